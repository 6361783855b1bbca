//! The rollback handler's judgement: did a fix in production fail, hold, or succeed?
//!
//! In: the fix record, the releases that carry it, an update of its incident (or none), and
//! the logs' clock. Out: a `Verdict`. A recurrence counts only from releases that carry the fix
//! (the fix's own release and every later one): an older release still running must not roll a
//! good fix back. Logs that name no release count from after the deploy instead. Pure.

use super::store::{FixRecord, Status};
use crate::core::record::Incident;
use crate::core::time::Millis;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// No fix in flight for it: the model stage may work on the incident.
    Unwatched,
    /// A fix is on its way or being watched: leave the incident alone.
    Hold,
    /// The error came back from a release with the fix.
    Recurred { release: String, events: u64 },
    /// The watch window passed without a recurrence.
    Successful,
}

/// Judges `fix` given an update of its incident (`None`: only the clock moved).
pub fn judge(
    fix: &FixRecord,
    with_fix: &[&str],
    incident: Option<&Incident>,
    clock: Millis,
    window: Millis,
) -> Verdict {
    match fix.status {
        Status::Proposed | Status::AwaitingApproval | Status::Successful => return Verdict::Hold,
        Status::StagingFailed | Status::Rejected | Status::RolledBack => return Verdict::Unwatched,
        Status::Production => {}
    }
    let Some(deployed_at) = fix.deployed_at else {
        return Verdict::Hold;
    };
    if let Some(i) = incident {
        if i.releases.is_empty() {
            // Logs without a release: any event after the deploy is a recurrence.
            let last =
                crate::core::timestamp::parse_field(&i.last_seen, 1970).unwrap_or(Millis::MIN);
            if i.count > fix.count_at_deploy && last > deployed_at {
                return Verdict::Recurred {
                    release: "unknown".into(),
                    events: i.count - fix.count_at_deploy,
                };
            }
        } else {
            let recurred: Vec<(&str, u64)> = i
                .releases
                .iter()
                .filter(|r| with_fix.contains(&r.release.as_str()) && r.count > 0)
                .map(|r| (r.release.as_str(), r.count))
                .collect();
            if let Some(&(release, _)) = recurred.first() {
                let events = recurred.iter().map(|r| r.1).sum();
                return Verdict::Recurred {
                    release: release.to_string(),
                    events,
                };
            }
        }
    }
    if clock >= deployed_at.saturating_add(window) {
        Verdict::Successful
    } else {
        Verdict::Hold
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::record::ReleaseCount;

    fn fix() -> FixRecord {
        FixRecord {
            id: "fix-1".into(),
            fingerprint: "f".into(),
            title: String::new(),
            branch: String::new(),
            commit: String::new(),
            diff: String::new(),
            status: Status::Production,
            incident_seen: 0,
            staging_commit: None,
            release: Some("r2".into()),
            deployed_at: Some(1_000),
            count_at_deploy: 5,
            rollback: None,
            history: Vec::new(),
        }
    }

    fn update(releases: &[(&str, u64)], count: u64, last_seen: &str) -> Incident {
        Incident {
            fingerprint: "f".into(),
            count,
            last_seen: last_seen.into(),
            releases: releases
                .iter()
                .map(|(r, c)| ReleaseCount {
                    release: r.to_string(),
                    count: *c,
                })
                .collect(),
            ..Incident::default()
        }
    }

    #[test]
    fn only_releases_with_the_fix_count() {
        let f = fix();
        let with = ["r2", "r3"];
        let old = update(&[("r1", 9)], 14, "1970-01-01T00:00:05Z");
        assert_eq!(judge(&f, &with, Some(&old), 2_000, 60_000), Verdict::Hold);
        let new = update(&[("r1", 9), ("r3", 2)], 16, "1970-01-01T00:00:05Z");
        assert_eq!(
            judge(&f, &with, Some(&new), 2_000, 60_000),
            Verdict::Recurred {
                release: "r3".into(),
                events: 2
            }
        );
    }

    #[test]
    fn without_releases_the_deploy_time_decides_and_the_window_ends_the_watch() {
        let f = fix();
        let before = update(&[], 7, "1970-01-01T00:00:00.500Z");
        assert_eq!(judge(&f, &[], Some(&before), 2_000, 60_000), Verdict::Hold);
        let after = update(&[], 7, "1970-01-01T00:00:02Z");
        assert!(matches!(
            judge(&f, &[], Some(&after), 2_000, 60_000),
            Verdict::Recurred { events: 2, .. }
        ));
        assert_eq!(judge(&f, &[], None, 61_000, 60_000), Verdict::Successful);
        let staged = FixRecord {
            status: Status::AwaitingApproval,
            ..fix()
        };
        assert_eq!(
            judge(&staged, &[], Some(&after), 99_000, 60_000),
            Verdict::Hold
        );
        let failed = FixRecord {
            status: Status::RolledBack,
            ..fix()
        };
        assert_eq!(judge(&failed, &[], None, 0, 60_000), Verdict::Unwatched);
    }
}
