//! The deployment manager: moves a fix from validated to staging to production, and back out.
//!
//! In: a validated `FixAttempt` (`ship`), an operator's `approve`/`reject`/`rollback`, the
//! watch's verdicts (`rollback`, `succeed`). Out: commits and branch moves (`git.rs`) or the
//! configured commands, releases and fix records (`store.rs`, changed under its lock), and the
//! notices to send. Blocking (git, the sandbox): the stage calls it from `spawn_blocking`.
//! State: in the store.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration as StdDuration, Instant};

use super::git::Git;
use super::notify::Notice;
use super::store::{Book, Event, FixRecord, Release, Status, Store};
use super::{Approval, DeployConfig, DeployError};
use crate::core::record::Incident;
use crate::core::time::{Millis, now_ms};
use crate::model::composer::FixAttempt;
use crate::model::sandbox::{self, Limits};
use crate::model::validator::Project;

/// What a call did: the fix as it is now, and what to tell people.
pub struct Moved {
    pub fix: FixRecord,
    pub notices: Vec<Notice>,
}

#[derive(Clone)]
pub struct Manager {
    pub config: DeployConfig,
    pub project: Project,
    pub limits: Limits,
    pub store: Store,
    git: Git,
}

fn notice(event: &str, fix: &FixRecord, text: String) -> Notice {
    Notice {
        event: event.into(),
        text,
        fingerprint: fix.fingerprint.clone(),
        fix: Some(fix.id.clone()),
        release: fix.release.clone(),
        at: crate::core::time::format_rfc3339(now_ms()),
    }
}

/// The fix after a move, with the one notice that says so.
pub(super) fn moved(event: &str, fix: FixRecord, what: &str) -> Moved {
    let text = format!(
        "fix {} for incident {} ({}) {what}",
        fix.id, fix.fingerprint, fix.title
    );
    Moved {
        notices: vec![notice(event, &fix, text)],
        fix,
    }
}

pub(super) fn note(fix: &mut FixRecord, what: String) {
    fix.history.push(Event { at: now_ms(), what });
}

pub(super) fn state(fix: &FixRecord, what: &'static str) -> DeployError {
    DeployError::State {
        id: fix.id.clone(),
        status: fix.status.as_str(),
        what,
    }
}

/// Fix `id` in the book, to change.
pub(super) fn fix_mut<'b>(book: &'b mut Book, id: &str) -> Result<&'b mut FixRecord, DeployError> {
    book.fix_mut(id)
        .ok_or_else(|| DeployError::NoFix(id.into()))
}

/// Fix `id`, if it is in one of the `allowed` states (else `what` says why not).
pub(super) fn fix_in(
    book: &Book,
    id: &str,
    allowed: &[Status],
    what: &'static str,
) -> Result<FixRecord, DeployError> {
    let rec = book
        .fix(id)
        .cloned()
        .ok_or_else(|| DeployError::NoFix(id.into()))?;
    if allowed.contains(&rec.status) {
        Ok(rec)
    } else {
        Err(state(&rec, what))
    }
}

impl Manager {
    pub fn new(
        config: &DeployConfig,
        project: &Project,
        limits: &Limits,
    ) -> Result<Manager, DeployError> {
        let repo = project
            .path
            .canonicalize()
            .map_err(|e| DeployError::Git(format!("{}: {e}", project.path.display())))?;
        Ok(Manager {
            store: Store::new(config.store_path(&repo)),
            git: Git {
                worktrees: project.worktrees(&repo),
                repo,
            },
            config: config.clone(),
            project: project.clone(),
            limits: limits.clone(),
        })
    }

    /// Runs an operator command (trusted: from the spec, not from a model) in the repository.
    /// A deploy or rollback command, told the release, the fix and the commit it ships.
    fn release_command(
        &self,
        what: &str,
        command: &str,
        release: &str,
        fix: &str,
        commit: &str,
    ) -> Result<(), DeployError> {
        let env = [
            ("HEPHAESTUS_RELEASE", release),
            ("HEPHAESTUS_FIX", fix),
            ("HEPHAESTUS_COMMIT", commit),
        ];
        self.command(what, command, &env)
    }

    fn command(&self, what: &str, command: &str, env: &[(&str, &str)]) -> Result<(), DeployError> {
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(command)
            .current_dir(&self.git.repo)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| DeployError::Command(format!("{what} `{command}`: {e}")))?;
        let deadline =
            Instant::now() + StdDuration::from_millis(self.config.command_timeout.0.max(1) as u64);
        loop {
            match child.try_wait() {
                Ok(Some(status)) if status.success() => return Ok(()),
                Ok(Some(status)) => {
                    let mut err = String::new();
                    if let Some(mut e) = child.stderr.take() {
                        let _ = std::io::Read::read_to_string(&mut e, &mut err);
                    }
                    let tail: Vec<&str> = err.lines().rev().take(5).collect();
                    return Err(DeployError::Command(format!(
                        "{what} `{command}` failed ({status}): {}",
                        tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
                    )));
                }
                Ok(None) if Instant::now() >= deadline => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(DeployError::Command(format!(
                        "{what} `{command}` timed out"
                    )));
                }
                Ok(None) => std::thread::sleep(StdDuration::from_millis(20)),
                Err(e) => return Err(DeployError::Command(format!("{what}: {e}"))),
            }
        }
    }

    fn production_head(&self) -> Result<String, DeployError> {
        self.git
            .ensure_branch(&self.config.production_branch, "HEAD")
            .map_err(DeployError::Git)
    }

    /// Stages the fix on top of production: the staged commit, or why staging failed.
    fn stage(&self, fix: &FixRecord) -> Result<String, String> {
        let env = [
            ("HEPHAESTUS_FIX", fix.id.as_str()),
            ("HEPHAESTUS_FIX_BRANCH", fix.branch.as_str()),
            ("HEPHAESTUS_FIX_COMMIT", fix.commit.as_str()),
        ];
        if !self.config.staging_command.is_empty() {
            self.command("staging", &self.config.staging_command, &env)
                .map_err(|e| e.to_string())?;
            return Ok(fix.commit.clone());
        }
        let production = self.production_head().map_err(|e| e.to_string())?;
        let staging = &self.config.staging_branch;
        self.git.ensure_branch(staging, &production)?;
        self.git
            .run(&self.git.repo, &["branch", "--force", staging, &production])?;
        let (merged, wt) = self.git.merge(
            staging,
            &fix.branch,
            &format!("hephaestus: stage {} ({})", fix.id, fix.title),
        )?;
        let mut checks = vec![("tests", self.project.test_command.as_str())];
        if !self.config.load_command.is_empty() {
            checks.push(("load test", self.config.load_command.as_str()));
        }
        for (name, cmd) in checks.into_iter().filter(|(_, c)| !c.is_empty()) {
            let run = sandbox::run(wt.dir(), cmd, &self.limits, &[]).map_err(|e| e.to_string())?;
            if !run.ok() {
                let tail: Vec<&str> = run
                    .stderr
                    .lines()
                    .chain(run.stdout.lines())
                    .rev()
                    .take(8)
                    .collect();
                return Err(format!(
                    "staging {name} `{cmd}` failed ({:?}): {}",
                    run.exit,
                    tail.join(" | ")
                ));
            }
        }
        Ok(merged)
    }

    /// Commits a validated attempt on its branch, stages it and, with automatic approval,
    /// deploys it.
    pub fn ship(
        &self,
        attempt: &FixAttempt,
        incident: &Incident,
        seen_at: Millis,
    ) -> Result<Moved, DeployError> {
        let (Some(fix), Some(tests)) = (&attempt.fix, &attempt.tests) else {
            return Err(DeployError::Git("the attempt has no fix or no test".into()));
        };
        let base = self.production_head()?;
        let branch = format!("hephaestus/fix/{}", incident.fingerprint);
        let message = format!(
            "hephaestus: fix {}\n\nIncident {}. {}",
            incident.title, incident.fingerprint, fix.explanation
        );
        let commit = self
            .git
            .commit_fix(&branch, &base, &[&fix.edits, &tests.edits], &message)
            .map_err(DeployError::Git)?;
        let mut notices = Vec::new();
        let rec = self.store.update(|book: &mut Book| {
            let mut rec = FixRecord {
                id: book.next_fix_id(),
                fingerprint: incident.fingerprint.clone(),
                title: incident.title.clone(),
                branch: branch.clone(),
                commit: commit.clone(),
                diff: attempt.diff.clone().unwrap_or_default(),
                status: Status::Proposed,
                incident_seen: seen_at,
                staging_commit: None,
                release: None,
                deployed_at: None,
                count_at_deploy: incident.count,
                rollback: None,
                history: Vec::new(),
            };
            note(&mut rec, format!("committed {commit:.12} on {branch}"));
            match self.stage(&rec) {
                Ok(staged) => {
                    note(&mut rec, format!("staged as {staged:.12}"));
                    rec.staging_commit = Some(staged);
                    rec.status = Status::AwaitingApproval;
                    crate::metrics::deploy("staging", None);
                }
                Err(why) => {
                    note(&mut rec, why);
                    rec.status = Status::StagingFailed;
                }
            }
            book.fixes.push(rec.clone());
            rec
        })?;
        let text = match rec.status {
            Status::StagingFailed => format!(
                "fix {} for incident {} failed staging: {}",
                rec.id,
                rec.fingerprint,
                rec.history.last().map_or("", |e| e.what.as_str())
            ),
            _ => format!(
                "fix {} proposed for incident {} ({}): staged on {}",
                rec.id, rec.fingerprint, rec.title, self.config.staging_branch
            ),
        };
        notices.push(notice("fix_proposed", &rec, text));
        if rec.status == Status::AwaitingApproval && self.config.approval == Approval::Auto {
            let mut moved = self.approve(&rec.id)?;
            notices.append(&mut moved.notices);
            return Ok(Moved {
                fix: moved.fix,
                notices,
            });
        }
        Ok(Moved { fix: rec, notices })
    }

    /// Deploys a staged fix: a new release on the production branch (or the deploy command).
    pub fn approve(&self, id: &str) -> Result<Moved, DeployError> {
        let fix = self
            .store
            .update(|book: &mut Book| -> Result<FixRecord, DeployError> {
                let release = book.next_release_id();
                let rec = fix_in(
                    book,
                    id,
                    &[Status::AwaitingApproval],
                    "only a staged fix awaiting approval can be deployed",
                )?;
                let mut staged = rec.shipped_commit();
                if self.config.deploy_command.is_empty() {
                    if self
                        .git
                        .fast_forward(&self.config.production_branch, &staged)
                        .is_err()
                    {
                        // Production moved since staging: stage again on top of it.
                        staged = self.stage(&rec).map_err(DeployError::Git)?;
                        self.git
                            .fast_forward(&self.config.production_branch, &staged)
                            .map_err(DeployError::Git)?;
                    }
                } else {
                    self.release_command(
                        "deploy",
                        &self.config.deploy_command,
                        &release,
                        id,
                        &staged,
                    )?;
                }
                let now = now_ms();
                book.releases.push(Release {
                    id: release.clone(),
                    commit: staged.clone(),
                    at: now,
                    reason: format!("deploy {id}"),
                });
                let rec = fix_mut(book, id)?;
                rec.staging_commit = Some(staged);
                rec.status = Status::Production;
                rec.release = Some(release.clone());
                rec.deployed_at = Some(now);
                note(rec, format!("deployed to production as release {release}"));
                crate::metrics::deploy(
                    "production",
                    Some((now - rec.incident_seen).max(0) as f64 / 1000.0),
                );
                Ok(rec.clone())
            })??;
        let what = format!(
            "deployed to production as release {}",
            fix.release.as_deref().unwrap_or("?")
        );
        Ok(moved("deployed", fix, &what))
    }

    pub(super) fn accuracy(&self) {
        if let Ok(book) = self.store.load() {
            let n = |s: Status| book.fixes.iter().filter(|f| f.status == s).count() as u64;
            crate::metrics::fix_accuracy(n(Status::Successful), n(Status::RolledBack));
        }
    }

    /// The repository this manager works on.
    pub fn repo(&self) -> PathBuf {
        self.git.repo.clone()
    }
}

#[path = "manager_back.rs"]
mod back;
