//! The "Team → Secrets" page in a real headless Chromium, driven over WebDriver.
//!
//! The tests need Chromium and ChromeDriver (Debian: `chromium`, `chromium-driver`), so they run
//! only when asked for: they are `#[ignore]`d, and `.ci/run` installs both and passes
//! `--include-ignored` (their absence then fails the tests).

use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};

use crate::Sandbox;
use crate::server::{ADMIN, RunningServer};

const CANARY: &str = "canary-browser-0c71d9e2";

struct Driver {
    child: Child,
    port: u16,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Chromium and ChromeDriver, which a browser test needs: it runs only when asked for (it is
/// `#[ignore]`d otherwise), and then their absence is a failure.
fn browser() -> (String, String) {
    let find = |names: &[&str]| {
        names
            .iter()
            .map(|n| format!("/usr/bin/{n}"))
            .find(|p| std::path::Path::new(p).exists())
    };
    match (
        find(&["chromium", "chromium-browser", "google-chrome"]),
        find(&["chromedriver"]),
    ) {
        (Some(b), Some(d)) => (b, d),
        _ => panic!("the browser test needs Chromium and ChromeDriver, and they are not installed"),
    }
}

fn start_driver(path: &str) -> Driver {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = std::process::Command::new(path)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "chromedriver did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    Driver { child, port }
}

async fn connect(driver: &Driver, binary: &str, profile: &std::path::Path) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "binary": binary,
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
                "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--window-size=1200,900", format!("--user-data-dir={}", profile.display()),
            ]
        }),
    );
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{}", driver.port))
        .await
        .expect("a WebDriver session")
}

/// Runs `f` with a WebDriver session of a headless Chromium (its own profile in the sandbox).
fn in_chromium<F, Fut, R>(sb: &Sandbox, binary: &str, driver_path: &str, f: F) -> R
where
    F: FnOnce(Client) -> Fut,
    Fut: std::future::Future<Output = R>,
{
    let driver = start_driver(driver_path);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // the whole session has a deadline too: a navigation that never ends fails the test
    let session = async {
        let c = connect(&driver, binary, &sb.home().join("chrome-profile")).await;
        f(c).await
    };
    rt.block_on(async {
        tokio::time::timeout(Duration::from_secs(180), session)
            .await
            .expect("the browser session ended within 3 minutes")
    })
}

/// The secrets page's editor: shown once signed in.
const EDITOR: Locator<'static> = Locator::Css("form[method=post][action='/ui/secrets'] #name");
/// The editor's save button.
const SAVE: &str = "form[method=post][action='/ui/secrets'] button[type=submit]";
/// The sign-in page's key field.
const SIGN_IN: Locator<'static> = Locator::Css("#key");

/// Waits for the page's notice that says `text`.
async fn flash(c: &Client, text: &str) {
    let xpath = format!("//div[contains(@class,'flash') and contains(., '{text}')]");
    wait_for(
        c,
        &format!("a notice saying {text:?}"),
        Locator::XPath(&xpath),
    )
    .await;
}

/// The element `at` finds, waited for at most 10 s; past that the test fails saying `what` it
/// waited for, the page's address and its source.
async fn wait_for(c: &Client, what: &str, at: Locator<'_>) -> fantoccini::elements::Element {
    match c
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(at)
        .await
    {
        Ok(e) => e,
        Err(e) => panic!(
            "{what}: no {at:?} within 10 s ({e}); at {:?}:\n{}",
            c.current_url().await,
            source(c).await
        ),
    }
}

async fn fill(c: &Client, css: &str, text: &str) {
    let e = wait_for(c, "a field to fill", Locator::Css(css)).await;
    e.clear().await.unwrap();
    e.send_keys(text).await.unwrap();
}

async fn click(c: &Client, css: &str) {
    let e = wait_for(c, "a button to click", Locator::Css(css)).await;
    e.click().await.unwrap();
}

async fn source(c: &Client) -> String {
    c.source().await.unwrap()
}

#[test]
#[ignore = "needs Chromium and ChromeDriver: pass --include-ignored"]
fn sign_in_create_update_delete_restore_sign_out_in_chromium() {
    let (binary, driver_path) = browser();
    let sb = Sandbox::new();
    let srv = RunningServer::start(&sb, &[], &[]);
    let viewer = srv
        .client(ADMIN)
        .create_key(&sigil_core::wire::CreateKey {
            role: sigil_core::wire::Role::Viewer,
            name: "browser viewer".into(),
        })
        .unwrap()
        .key;
    let srv_after = in_chromium(&sb, &binary, &driver_path, |c| async move {
        let base = srv.url.clone();
        let mut sources = Vec::new();
        // sign in
        c.goto(&format!("{base}/")).await.unwrap();
        fill(&c, "#key", ADMIN).await;
        click(&c, "form[action='/ui/signin'] button[type=submit]").await;
        wait_for(&c, "signed in", EDITOR).await;
        // create
        fill(&c, "#name", "browser/db/password").await;
        fill(&c, "#value", CANARY).await;
        click(&c, SAVE).await;
        flash(&c, "Saved").await;
        sources.push(source(&c).await);
        // listed (in its folder)
        c.goto(&format!("{base}/ui/secrets?folder=browser/db/"))
            .await
            .unwrap();
        let link = wait_for(
            &c,
            "the secret in its folder",
            Locator::LinkText("browser/db/password"),
        )
        .await;
        sources.push(source(&c).await);
        link.click().await.unwrap();
        // update
        fill(&c, "#value", "{\"rotated\": true}").await;
        c.find(Locator::Css("#format"))
            .await
            .unwrap()
            .select_by_value("json")
            .await
            .unwrap();
        click(&c, SAVE).await;
        wait_for(
            &c,
            "version 2 in the history",
            Locator::XPath("//td[text()='2']"),
        )
        .await;
        sources.push(source(&c).await);
        // delete, confirmed
        click(&c, "a[href$='?confirm=1']").await;
        click(&c, "form[action^='/ui/delete/'] button.danger").await;
        wait_for(
            &c,
            "the deleted secret's page",
            Locator::XPath("//h1[contains(., '(deleted)')]"),
        )
        .await;
        sources.push(source(&c).await);
        // restore
        click(&c, "form[action^='/ui/restore/'] button").await;
        flash(&c, "Restored").await;
        sources.push(source(&c).await);
        // the list, for the README's screenshot
        c.goto(&format!("{base}/ui/secrets")).await.unwrap();
        wait_for(&c, "the folder in the list", Locator::LinkText("browser/")).await;
        let png = c.screenshot().await.unwrap();
        let shot = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("secrets-page.png");
        std::fs::write(&shot, &png).unwrap();
        eprintln!("screenshot: {}", shot.display());
        assert!(png.starts_with(b"\x89PNG"));
        // sign out
        click(&c, "form[action='/ui/signout'] button").await;
        wait_for(&c, "the sign-in page after signing out", SIGN_IN).await;
        assert!(source(&c).await.contains("Signed out"));
        for s in &sources {
            assert!(!s.contains(CANARY), "a page sent the value to the browser");
        }
        // a viewer: no changing buttons, and a forged post is refused
        fill(&c, "#key", &viewer).await;
        click(&c, "form[action='/ui/signin'] button[type=submit]").await;
        let row = wait_for(&c, "the viewer's list", Locator::LinkText("browser/")).await;
        let page = source(&c).await;
        assert!(!page.contains("New secret") && !page.contains(">Create<"));
        row.click().await.unwrap();
        wait_for(&c, "the inner folder", Locator::LinkText("db/")).await;
        c.goto(&format!("{base}/ui/secret/browser/db/password"))
            .await
            .unwrap();
        let page = source(&c).await;
        assert!(
            !page.contains("Save new version") && !page.contains("Delete"),
            "a viewer's page has no changing buttons"
        );
        let forged = c
            .execute(
                "const f = document.createElement('form'); f.method = 'post'; f.action = '/ui/delete/browser/db/password';
                 const t = document.createElement('input'); t.name = 'csrf';
                 t.value = document.querySelector('input[name=csrf]').value; f.appendChild(t);
                 document.body.appendChild(f); f.submit(); return true;",
                vec![],
            )
            .await;
        assert!(forged.is_ok());
        flash(&c, "needs the writer role").await;
        c.close().await.unwrap();
        srv
    });
    let r = srv_after
        .client(ADMIN)
        .get_secret("browser/db/password", None)
        .unwrap()
        .expect("the viewer's forged delete changed nothing");
    assert_eq!(r.version, 2);
    assert_eq!(r.value, serde_json::json!({"rotated": true}));
}

/// The page against two replicas sharing one PostgreSQL database: signed in through one, the
/// person is served by the other (sessions live in the database), and signing out through the
/// other ends the session on both.
#[test]
#[ignore = "needs Chromium, ChromeDriver and PostgreSQL: set SIGIL_TEST_POSTGRES_URL and pass --include-ignored"]
fn the_page_works_across_two_replicas_on_postgres() {
    let (binary, driver_path) = browser();
    let (sa, _sb, a, b) =
        crate::server::two_replicas_on_postgres("two-replica browser test", "sigil_web_replicas");
    let (url_a, url_b) = (a.url.clone(), b.url.clone());
    in_chromium(&sa, &binary, &driver_path, |c| async move {
        // sign in through A
        c.goto(&format!("{url_a}/")).await.unwrap();
        fill(&c, "#key", ADMIN).await;
        click(&c, "form[action='/ui/signin'] button[type=submit]").await;
        wait_for(&c, "signed in through A", EDITOR).await;
        // list and save through B (the cookie is the same host's; B knows the session)
        c.goto(&format!("{url_b}/ui/secrets")).await.unwrap();
        wait_for(&c, "B serves A's session", EDITOR).await;
        fill(&c, "#name", "replicas/saved-on-b").await;
        fill(&c, "#value", CANARY).await;
        click(&c, SAVE).await;
        flash(&c, "Saved").await;
        // A lists it
        c.goto(&format!("{url_a}/ui/secrets?folder=replicas/"))
            .await
            .unwrap();
        wait_for(
            &c,
            "A lists what B saved",
            Locator::LinkText("replicas/saved-on-b"),
        )
        .await;
        assert!(!source(&c).await.contains(CANARY));
        // sign out through B: A no longer knows the session
        c.goto(&format!("{url_b}/ui/secrets")).await.unwrap();
        click(&c, "form[action='/ui/signout'] button").await;
        wait_for(&c, "the sign-in page after signing out", SIGN_IN).await;
        c.goto(&format!("{url_a}/ui/secrets")).await.unwrap();
        wait_for(&c, "A sends the signed-out session to sign in", SIGN_IN).await;
        c.close().await.unwrap();
    });
    let read = a
        .client(ADMIN)
        .get_secret("replicas/saved-on-b", None)
        .unwrap()
        .unwrap();
    assert_eq!(read.value, serde_json::json!(CANARY));
    drop(b);
}
