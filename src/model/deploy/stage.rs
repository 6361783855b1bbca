//! The deployment loop inside the model-worker stage: what the stage asks before working on an
//! incident, and what it does with a validated fix.
//!
//! In: every incident update the stage takes (`watch`), validated attempts (`ship`), started
//! incidents (`opened`). Out: rollbacks and successes decided by `watch.rs` and carried out by
//! the manager, fixes shipped, notices sent, and for the stage: leave the incident alone, or
//! work on it again knowing what failed. State: the logs' clock (the newest `at` seen).

use std::sync::Mutex;

use super::manager::{Manager, Moved};
use super::notify::{Notice, Notifier};
use super::store::{Book, Status};
use super::watch::{Verdict, judge};
use super::{DeployConfig, DeployError};
use crate::core::record::Incident;
use crate::core::time::Millis;
use crate::model::composer::FixAttempt;

/// What the stage should do with an incident.
#[derive(Debug, Default, PartialEq)]
pub enum Next {
    /// Admission as usual.
    #[default]
    Admit,
    /// A fix is on its way or watched: only a recurrence to count.
    Hold,
    /// Its fix was rolled back: work on it again with these facts, never proposing these diffs.
    Rework {
        history: Vec<String>,
        rejected: Vec<String>,
    },
}

pub struct DeployLoop {
    /// Present when fixes are deployed (`model.automation = "deploy"`).
    manager: Option<Manager>,
    notifier: Notifier,
    window: Millis,
    clock: Mutex<Millis>,
    /// Problems to report at the end (the job fails with them).
    pub errors: Mutex<Vec<String>>,
}

/// Runs blocking deployment work off the async threads.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, String> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| format!("deployment task failed: {e}"))
}

impl DeployLoop {
    pub fn new(config: &DeployConfig, manager: Option<Manager>) -> Result<DeployLoop, String> {
        Ok(DeployLoop {
            manager,
            notifier: Notifier::new(&config.notify)?,
            window: config.watch_window.0,
            clock: Mutex::new(Millis::MIN),
            errors: Mutex::default(),
        })
    }

    fn error(&self, e: String) {
        eprintln!("hephaestus: deploy: {e}");
        if let Ok(mut v) = self.errors.lock() {
            v.push(e);
        }
    }

    async fn tell(&self, notices: Vec<Notice>) {
        for n in notices {
            if let Err(e) = self.notifier.send(&n).await {
                // A notification that cannot be delivered is reported, never fatal.
                eprintln!("hephaestus: notify: {e}");
            }
        }
    }

    /// The stage started work on an incident.
    pub async fn opened(&self, incident: &Incident) {
        let text = format!(
            "incident {} opened: {} ({} events)",
            incident.fingerprint, incident.title, incident.count
        );
        let at = crate::core::time::format_rfc3339(crate::core::time::now_ms());
        self.tell(vec![Notice {
            event: "incident_opened".into(),
            text,
            fingerprint: incident.fingerprint.clone(),
            fix: None,
            release: None,
            at,
        }])
        .await;
    }

    fn store_book(&self) -> Option<Book> {
        let m = self.manager.as_ref()?;
        match m.store.load() {
            Ok(b) => Some(b),
            Err(e) => {
                self.error(e.to_string());
                None
            }
        }
    }

    /// Runs `f` on the manager off the async threads and sends what it has to tell.
    async fn run(
        &self,
        f: impl FnOnce(&Manager) -> Result<Moved, DeployError> + Send + 'static,
    ) -> Option<Moved> {
        let m = self.manager.as_ref()?.clone();
        match blocking(move || f(&m)).await {
            Ok(Ok(moved)) => {
                self.tell(moved.notices.clone()).await;
                Some(moved)
            }
            Ok(Err(e)) => {
                self.error(e.to_string());
                None
            }
            Err(e) => {
                self.error(e);
                None
            }
        }
    }

    /// Looks at an incident update before admission: rolls back a fix it proves failed, marks
    /// fixes whose window has passed successful, and says what the stage should do.
    pub async fn watch(&self, incident: &Incident) -> Next {
        let at = crate::core::timestamp::parse_field(&incident.at, 1970).unwrap_or(Millis::MIN);
        let clock = match self.clock.lock() {
            Ok(mut c) => {
                *c = (*c).max(at);
                *c
            }
            Err(_) => at,
        };
        let Some(book) = self.store_book() else {
            return Next::Admit;
        };
        // Fixes of other incidents whose window the clock has now passed.
        for fix in book
            .fixes
            .iter()
            .filter(|f| f.status == Status::Production && f.fingerprint != incident.fingerprint)
        {
            let with = book.releases_since(fix.release.as_deref().unwrap_or_default());
            if judge(fix, &with, None, clock, self.window) == Verdict::Successful {
                let id = fix.id.clone();
                self.run(move |m| m.succeed(&id)).await;
            }
        }
        let Some(fix) = book.latest_for(&incident.fingerprint) else {
            return Next::Admit;
        };
        let with = book.releases_since(fix.release.as_deref().unwrap_or_default());
        match judge(fix, &with, Some(incident), clock, self.window) {
            Verdict::Hold => Next::Hold,
            Verdict::Successful => {
                let id = fix.id.clone();
                self.run(move |m| m.succeed(&id)).await;
                Next::Hold
            }
            Verdict::Recurred { release, events } => {
                let why = format!(
                    "the error came back: {events} event(s) from release {release}, which carries the fix"
                );
                let (id, w, fix_id) = (fix.id.clone(), why.clone(), fix.id.clone());
                self.run(move |m| m.rollback(&id, &w)).await;
                let fact = format!(
                    "{} ({}) was rolled back: {why}",
                    fix.id,
                    fix.release.as_deref().unwrap_or("?")
                );
                // The record as the rollback left it.
                let book = self.store_book().unwrap_or(book);
                let recorded = book
                    .fix(&fix_id)
                    .is_some_and(|f| f.status == Status::RolledBack);
                self.rework(&book, &incident.fingerprint, (!recorded).then_some(fact))
            }
            Verdict::Unwatched => self.rework(&book, &incident.fingerprint, None),
        }
    }

    /// What earlier fixes of a fingerprint teach the next attempt.
    fn rework(&self, book: &Book, fingerprint: &str, now: Option<String>) -> Next {
        let failed: Vec<_> = book
            .fixes
            .iter()
            .filter(|f| f.fingerprint == fingerprint && f.status == Status::RolledBack)
            .collect();
        if failed.is_empty() && now.is_none() {
            return Next::Admit;
        }
        let mut history: Vec<String> = failed
            .iter()
            .map(|f| {
                format!(
                    "fix {} shipped in release {} and was rolled back: {}",
                    f.id,
                    f.release.as_deref().unwrap_or("?"),
                    f.rollback.as_deref().unwrap_or("")
                )
            })
            .collect();
        history.extend(now);
        Next::Rework {
            history,
            rejected: failed.iter().map(|f| f.diff.clone()).collect(),
        }
    }

    /// Ships a validated attempt; the note for its Deployment step.
    pub async fn ship(&self, attempt: &FixAttempt, incident: &Incident, seen_at: Millis) -> String {
        if self.manager.is_none() {
            return "validated; deployment is off (model.automation is not \"deploy\")".into();
        }
        let (a, i) = (attempt.clone(), incident.clone());
        match self.run(move |m| m.ship(&a, &i, seen_at)).await {
            Some(moved) => {
                format!("{} {}", moved.fix.id, moved.fix.status.as_str())
                    + &moved
                        .fix
                        .release
                        .map(|r| format!(" as release {r}"))
                        .unwrap_or_default()
            }
            None => "deployment failed (see the job's errors)".into(),
        }
    }
}
