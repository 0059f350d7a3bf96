//! The master key at start: loaded from where the operator said, never minted for a database
//! that already holds data keys, and checked against those data keys before the server serves.

use std::collections::HashMap;

use sigil_store::Store;

use crate::crypto::MasterKey;
use crate::{BoxError, MasterKeySource};

impl MasterKeySource {
    /// Where the key comes from, as an error names it.
    pub fn describe(&self) -> String {
        match self {
            MasterKeySource::Env(_) => "SIGIL_MASTER_KEY".into(),
            MasterKeySource::File(p) => format!("the master key file {}", p.display()),
        }
    }
}

/// Loads the master key. A key file that does not exist is created (0600, with a warning) only
/// when `may_create`: for a database that holds no data key yet. For one that does, a new key
/// would open none of them — every read would fail — so a missing file is a refusal.
///
/// # Errors
/// An invalid key; a key file that cannot be read, or cannot be created, or is missing when it
/// may not be created.
pub fn load_master_key(source: &MasterKeySource, may_create: bool) -> Result<MasterKey, BoxError> {
    match source {
        MasterKeySource::Env(text) => Ok(MasterKey::from_base64(text, "SIGIL_MASTER_KEY")?),
        MasterKeySource::File(path) if !may_create && !path.exists() => Err(format!(
            "{} does not exist, and this database holds data keys made with a master key: \
             give that key (SIGIL_MASTER_KEY or --master-key-file; restore the file from where it is \
             kept). A new key would open none of them, so none is created",
            source.describe()
        )
        .into()),
        MasterKeySource::File(path) => {
            let (key, created) = MasterKey::load_or_create(path)?;
            if created {
                tracing::warn!(
                    path = %path.display(),
                    "created a new master key file; in production supply your own key (SIGIL_MASTER_KEY) and keep it outside the database's backups"
                );
            }
            Ok(key)
        }
    }
}

/// Checks that the master key (`master`, from `source`) and the previous keys of a rolling
/// restart open every data key in the database: each data key names the master key that wrapped
/// it, which must be one of them and must unwrap it (an authenticated decryption, so a key of
/// the right id that is not the right key is caught too). A previous key that wraps nothing is
/// only a warning: after a rotation no data key needs it any more.
///
/// # Errors
/// The first data key none of the keys opens, naming the key's source, its id and the id of the
/// key the data key needs; the store's failure.
pub async fn check_master_keys(
    store: &dyn Store,
    master: &MasterKey,
    source: &MasterKeySource,
    previous: &[(MasterKey, MasterKeySource)],
) -> Result<(), BoxError> {
    // the data keys first, then the teams (which are never removed): a replica starting while
    // another bootstraps then knows the team of every data key it read (its name is bound into
    // the key's wrapping); read the other way round, a team made in between was "unknown" and
    // the start failed (the two-replica tests on PostgreSQL, now and then)
    let data_keys = store.all_data_keys().await?;
    let teams: HashMap<i64, String> = store
        .list_teams()
        .await?
        .into_iter()
        .map(|t| (t.id, t.name))
        .collect();
    let mut used = vec![false; previous.len()];
    for row in data_keys {
        let team = teams
            .get(&row.team_id)
            .ok_or_else(|| format!("data key {} of unknown team {}", row.version, row.team_id))?;
        let key = if row.master_key_id == master.id() {
            Some((master, source))
        } else {
            previous
                .iter()
                .enumerate()
                .find(|(_, (k, _))| k.id() == row.master_key_id)
                .map(|(i, (k, s))| {
                    used[i] = true;
                    (k, s)
                })
        };
        let Some((key, from)) = key else {
            let others = if previous.is_empty() {
                String::new()
            } else {
                let ids: Vec<&str> = previous.iter().map(|(k, _)| k.id()).collect();
                format!(" nor the previous keys ({})", ids.join(", "))
            };
            return Err(format!(
                "the master key from {} (id {}){others} does not open this database's data keys: \
                 data key {} of team {team:?} is wrapped by master key {}. Start with the key it \
                 was made with; during a rotation give the other one as --previous-master-key-file",
                source.describe(),
                master.id(),
                row.version,
                row.master_key_id
            )
            .into());
        };
        if let Err(e) = key.unwrap(&row.wrapped, team, row.version as u32) {
            return Err(format!(
                "the master key from {} has the id of the key that wrapped data key {} of team \
                 {team:?} ({}) but does not open it ({e}): the key file or the database is damaged",
                from.describe(),
                row.version,
                row.master_key_id
            )
            .into());
        }
    }
    for ((k, s), used) in previous.iter().zip(used) {
        if !used {
            tracing::warn!(
                key = k.id(),
                source = %s.describe(),
                "a previous master key wraps no data key any more: it may be dropped"
            );
        }
    }
    Ok(())
}
