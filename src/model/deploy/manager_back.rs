//! The end of a fix's road: an operator turns a staged fix down (`reject`), the watch or an
//! operator takes a deployed fix out of production (`rollback`: a new release without it), or
//! the watch window passes without a recurrence (`succeed`).
//!
//! In: a fix id and why. Out: the fix as it is now and the notices to send. State: in the store.

use super::*;

impl Manager {
    /// Turns a staged fix down.
    pub fn reject(&self, id: &str, why: &str) -> Result<Moved, DeployError> {
        let fix = self
            .store
            .update(|book: &mut Book| -> Result<FixRecord, DeployError> {
                let rec = fix_mut(book, id)?;
                if rec.status != Status::AwaitingApproval {
                    return Err(state(
                        rec,
                        "only a staged fix awaiting approval can be rejected",
                    ));
                }
                rec.status = Status::Rejected;
                note(rec, format!("rejected: {why}"));
                Ok(rec.clone())
            })??;
        Ok(Moved {
            fix,
            notices: Vec::new(),
        })
    }

    /// Takes a deployed fix out of production: a new release without it.
    pub fn rollback(&self, id: &str, why: &str) -> Result<Moved, DeployError> {
        let fix = self
            .store
            .update(|book: &mut Book| -> Result<FixRecord, DeployError> {
                let release = book.next_release_id();
                let rec = fix_in(
                    book,
                    id,
                    &[Status::Production, Status::Successful],
                    "only a deployed fix can be rolled back",
                )?;
                let shipped = rec.shipped_commit();
                let commit = if self.config.rollback_command.is_empty() {
                    let message = format!("hephaestus: roll back {id} ({})\n\n{why}", rec.title);
                    self.git
                        .revert(&self.config.production_branch, &shipped, &message)
                        .map_err(DeployError::Git)?
                } else {
                    self.release_command(
                        "rollback",
                        &self.config.rollback_command,
                        &release,
                        id,
                        &shipped,
                    )?;
                    shipped
                };
                book.releases.push(Release {
                    id: release.clone(),
                    commit,
                    at: now_ms(),
                    reason: format!("rollback {id}"),
                });
                let rec = fix_mut(book, id)?;
                rec.status = Status::RolledBack;
                rec.rollback = Some(why.to_string());
                note(rec, format!("rolled back in release {release}: {why}"));
                crate::metrics::rollback();
                Ok(rec.clone())
            })??;
        self.accuracy();
        let text = format!("rolled back: {why}");
        Ok(moved("rolled_back", fix, &text))
    }

    /// The watch window passed without a recurrence.
    pub fn succeed(&self, id: &str) -> Result<Moved, DeployError> {
        let fix = self
            .store
            .update(|book: &mut Book| -> Result<FixRecord, DeployError> {
                let rec = fix_mut(book, id)?;
                if rec.status != Status::Production {
                    return Err(state(rec, "only a fix in production can succeed"));
                }
                rec.status = Status::Successful;
                note(
                    rec,
                    "no recurrence during the watch window: successful".into(),
                );
                Ok(rec.clone())
            })??;
        self.accuracy();
        Ok(moved(
            "fix_successful",
            fix,
            "held through the watch window: successful",
        ))
    }
}
