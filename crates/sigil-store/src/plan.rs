//! What a change of versions does, decided once for both backends: each backend reads the rows,
//! asks here what to write, and writes it in its own transaction.

use crate::StoreError;
use crate::model::{KvConfig, SecretRow, SecretSettings, VersionChange, VersionRow};

/// The rows a new version writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NewVersion {
    /// Its number.
    pub(crate) version: i64,
    /// The secret's first creation (kept from the row, or now).
    pub(crate) created_at: i64,
    /// When it is soft-deleted by the settings' `delete_version_after`.
    pub(crate) deleted_at: Option<i64>,
    /// The oldest version kept after it is written.
    pub(crate) oldest_version: i64,
    /// Versions below this one are removed for good (`max_versions`); none when `None`.
    pub(crate) prune_below: Option<i64>,
    /// The secret's settings (kept from the row).
    pub(crate) settings: SecretSettings,
}

/// A write of a new version over `current` (the secret's row, deleted or not, if any), with the
/// team's `config`: the check-and-set, then the version's number, its deletion time and the
/// versions `max_versions` removes (the sliding window of OpenBao's `AddVersion`: once
/// `version - oldest >= max`, every version up to `version - max` goes).
pub(crate) fn new_version(
    current: Option<&SecretRow>,
    config: &KvConfig,
    cas: Option<i64>,
    at: i64,
) -> Result<NewVersion, StoreError> {
    let settings = current.map(|r| r.settings.clone()).unwrap_or_default();
    let live_version = current
        .filter(|r| r.deleted_at.is_none())
        .map_or(0, |r| r.version);
    match cas {
        Some(cas) if cas != live_version => {
            return Err(StoreError::Conflict {
                current: live_version,
            });
        }
        None if config.cas_required(&settings) => return Err(StoreError::CasRequired),
        _ => {}
    }
    let version = current.map_or(0, |r| r.version) + 1;
    let mut oldest_version = current.map_or(0, |r| r.oldest_version);
    let max = config.max_versions(&settings);
    let mut prune_below = None;
    if max > 0 && version - oldest_version >= max {
        oldest_version = version - max + 1;
        prune_below = Some(oldest_version);
    }
    Ok(NewVersion {
        version,
        created_at: current.map_or(at, |r| r.created_at),
        deleted_at: config.deletion_time(&settings, at),
        oldest_version,
        prune_below,
        settings,
    })
}

/// The row whose settings a change applies to: the secret's, or a new one without versions
/// (version 0) when there is none, as Vault's metadata write makes; a secret deleted through
/// Sigil is refused until restored.
pub(crate) fn settings_row(
    current: Option<SecretRow>,
    name: &str,
    at: i64,
    by: &str,
) -> Result<SecretRow, StoreError> {
    match current {
        Some(row) if row.deleted_at.is_some() => {
            Err(StoreError::Deleted(format!("secret {name:?}")))
        }
        Some(row) => Ok(row),
        None => Ok(SecretRow {
            name: name.to_owned(),
            version: 0,
            created_at: at,
            updated_at: at,
            updated_by: by.to_owned(),
            deleted_at: None,
            oldest_version: 0,
            settings: SecretSettings::default(),
        }),
    }
}

/// A version's state after `change` at `at`: its new `(deleted_at, destroyed)`, or `None` when
/// the change leaves it as it is (a destroyed version stays so; a deleted one is not deleted
/// again; a destroyed one is not undeleted).
pub(crate) fn changed_version(
    v: &VersionRow,
    change: VersionChange,
    at: i64,
    config: &KvConfig,
    settings: &SecretSettings,
) -> Option<(Option<i64>, bool)> {
    if v.destroyed {
        return None;
    }
    let deleted_now = v.deleted_at.is_some_and(|d| d <= at);
    match change {
        VersionChange::Delete if deleted_now => None,
        VersionChange::Delete => Some((Some(at), false)),
        VersionChange::Undelete => {
            let again = config.deletion_time(settings, at);
            (v.deleted_at != again).then_some((again, false))
        }
        VersionChange::Destroy => Some((v.deleted_at, true)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(version: i64, oldest: i64, settings: SecretSettings) -> SecretRow {
        SecretRow {
            name: "a".into(),
            version,
            created_at: 5,
            updated_at: 6,
            updated_by: "k".into(),
            deleted_at: None,
            oldest_version: oldest,
            settings,
        }
    }

    fn version(deleted_at: Option<i64>, destroyed: bool) -> VersionRow {
        VersionRow {
            version: 1,
            data_key_version: 1,
            ciphertext: vec![1],
            created_at: 1,
            created_by: "k".into(),
            deleted_at,
            destroyed,
        }
    }

    #[test]
    fn max_versions_slides_as_openbao_does() {
        let keep = |n| SecretSettings {
            max_versions: n,
            ..Default::default()
        };
        let config = KvConfig::default();
        // the third write with max 3: version 3 - oldest 0 >= 3, nothing below 1 exists
        let w = new_version(Some(&row(2, 0, keep(3))), &config, None, 9).unwrap();
        assert_eq!(
            (w.version, w.oldest_version, w.prune_below),
            (3, 1, Some(1))
        );
        let w = new_version(Some(&row(3, 1, keep(3))), &config, None, 9).unwrap();
        assert_eq!(
            (w.version, w.oldest_version, w.prune_below),
            (4, 2, Some(2))
        );
        // lowered to 1: every older version goes at the next write
        let w = new_version(Some(&row(4, 2, keep(1))), &config, None, 9).unwrap();
        assert_eq!((w.oldest_version, w.prune_below), (5, Some(5)));
        // no setting anywhere: everything is kept
        let w = new_version(Some(&row(40, 0, keep(0))), &config, None, 9).unwrap();
        assert_eq!((w.oldest_version, w.prune_below), (0, None));
        // the team's setting when the secret's own is smaller
        let team = KvConfig {
            max_versions: 5,
            ..Default::default()
        };
        let w = new_version(Some(&row(3, 0, keep(2))), &team, None, 9).unwrap();
        assert_eq!((w.oldest_version, w.prune_below), (0, None));
        let w = new_version(Some(&row(4, 0, keep(2))), &team, None, 9).unwrap();
        assert_eq!((w.oldest_version, w.prune_below), (1, Some(1)));
        let w = new_version(Some(&row(5, 1, keep(2))), &team, None, 9).unwrap();
        assert_eq!((w.oldest_version, w.prune_below), (2, Some(2)));
    }

    #[test]
    fn check_and_set_and_its_requirement() {
        let config = KvConfig::default();
        let cur = row(3, 0, SecretSettings::default());
        assert_eq!(
            new_version(Some(&cur), &config, Some(2), 9),
            Err(StoreError::Conflict { current: 3 })
        );
        assert_eq!(new_version(None, &config, Some(0), 9).unwrap().version, 1);
        let strict = SecretSettings {
            cas_required: true,
            ..Default::default()
        };
        let cur = row(3, 0, strict);
        assert_eq!(
            new_version(Some(&cur), &config, None, 9),
            Err(StoreError::CasRequired)
        );
        assert_eq!(
            new_version(Some(&cur), &config, Some(3), 9)
                .unwrap()
                .version,
            4
        );
        let team = KvConfig {
            cas_required: true,
            ..Default::default()
        };
        assert_eq!(
            new_version(None, &team, None, 9),
            Err(StoreError::CasRequired)
        );
        // a secret deleted through Sigil is absent to check-and-set, and keeps counting
        let mut gone = row(3, 0, SecretSettings::default());
        gone.deleted_at = Some(8);
        assert_eq!(
            new_version(Some(&gone), &config, Some(0), 9)
                .unwrap()
                .version,
            4
        );
    }

    #[test]
    fn delete_version_after_takes_the_shorter_period() {
        let own = |d| SecretSettings {
            delete_version_after: d,
            ..Default::default()
        };
        let team = |d| KvConfig {
            delete_version_after: d,
            ..Default::default()
        };
        assert_eq!(team(0).deletion_time(&own(0), 100), None);
        assert_eq!(team(0).deletion_time(&own(50), 100), Some(150));
        assert_eq!(team(30).deletion_time(&own(0), 100), Some(130));
        assert_eq!(team(30).deletion_time(&own(50), 100), Some(130));
        assert_eq!(team(80).deletion_time(&own(50), 100), Some(150));
        let w = new_version(Some(&row(1, 0, own(50))), &team(0), None, 1000).unwrap();
        assert_eq!(w.deleted_at, Some(1050));
    }

    #[test]
    fn version_changes() {
        let (config, settings) = (KvConfig::default(), SecretSettings::default());
        let change = |v: &VersionRow, c| changed_version(v, c, 100, &config, &settings);
        let live = version(None, false);
        let later = version(Some(200), false); // deletion set ahead, not come yet
        let deleted = version(Some(50), false);
        let destroyed = version(None, true);
        assert_eq!(
            change(&live, VersionChange::Delete),
            Some((Some(100), false))
        );
        assert_eq!(
            change(&later, VersionChange::Delete),
            Some((Some(100), false))
        );
        assert_eq!(change(&deleted, VersionChange::Delete), None);
        assert_eq!(change(&destroyed, VersionChange::Delete), None);
        assert_eq!(
            change(&deleted, VersionChange::Undelete),
            Some((None, false))
        );
        assert_eq!(change(&live, VersionChange::Undelete), None);
        assert_eq!(change(&destroyed, VersionChange::Undelete), None);
        assert_eq!(
            change(&deleted, VersionChange::Destroy),
            Some((Some(50), true))
        );
        assert_eq!(change(&destroyed, VersionChange::Destroy), None);
        // undeleted under a deletion period: deleted again that long from now
        let timed = SecretSettings {
            delete_version_after: 10,
            ..Default::default()
        };
        assert_eq!(
            changed_version(&deleted, VersionChange::Undelete, 100, &config, &timed),
            Some((Some(110), false))
        );
    }

    #[test]
    fn a_version_state_depends_on_the_time() {
        use crate::model::VersionState;
        assert_eq!(version(Some(200), false).state_at(100), VersionState::Live);
        assert_eq!(
            version(Some(200), false).state_at(200),
            VersionState::Deleted
        );
        assert_eq!(
            version(Some(200), true).state_at(100),
            VersionState::Destroyed
        );
    }
}
