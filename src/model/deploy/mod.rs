//! The deployment loop: a validated fix goes to staging, then production, and is rolled back
//! when its incident comes back from a release that carries it.
//!
//! In: validated fix attempts from the model stage, incident updates (with their events per
//! release), and operators' decisions (`hephaestus fixes`). Out: commits and branch moves in the
//! target repository (`git.rs`), releases and fix records (`store.rs`), notifications
//! (`notify.rs`), metrics. `manager.rs` moves fixes along; `watch.rs` decides, from an incident
//! update, whether a fix in production failed or held. This file: the `[deploy]` section.
//! State: in the store.

pub mod git;
pub mod manager;
pub mod notify;
pub mod stage;
pub mod store;
pub mod watch;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::core::time::Duration;

/// Who lets a staged fix into production.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Approval {
    /// A fix that passes staging is deployed at once.
    #[default]
    Auto,
    /// It waits for `hephaestus fixes approve ID`.
    Manual,
}

/// `[deploy]`: used when `model.automation = "deploy"`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DeployConfig {
    pub approval: Approval,
    /// Each fix is staged here: the branch is reset to production and the fix merged into it.
    pub staging_branch: String,
    /// …and this branch is fast-forwarded to the staged merge (created from the repository's
    /// HEAD when missing).
    pub production_branch: String,
    /// Instead of merging into `staging_branch`: a command that stages the fix branch.
    pub staging_command: String,
    /// Run in the sandbox on the staged tree after the test command (a load or performance
    /// test); must pass.
    pub load_command: String,
    /// Instead of fast-forwarding `production_branch`: a command that deploys.
    pub deploy_command: String,
    /// Instead of `git revert` on `production_branch`: a command that rolls back.
    pub rollback_command: String,
    /// A fix in production without a recurrence for this long (in the logs' time) succeeded.
    pub watch_window: Duration,
    /// The deployment record; default `<repository>/.git/hephaestus/deploys.json`.
    pub store: Option<PathBuf>,
    /// Operator commands (staging, deploy, rollback) are stopped after this long.
    pub command_timeout: Duration,
    pub notify: notify::NotifyConfig,
}

impl Default for DeployConfig {
    fn default() -> Self {
        DeployConfig {
            approval: Approval::Auto,
            staging_branch: "hephaestus/staging".into(),
            production_branch: "production".into(),
            staging_command: String::new(),
            load_command: String::new(),
            deploy_command: String::new(),
            rollback_command: String::new(),
            watch_window: Duration(3_600_000),
            store: None,
            command_timeout: Duration(600_000),
            notify: notify::NotifyConfig::default(),
        }
    }
}

impl DeployConfig {
    /// Resolves relative paths and checks the section.
    pub fn plan(&mut self, resolve: impl Fn(PathBuf) -> PathBuf) -> Result<(), String> {
        self.store = self.store.take().map(&resolve);
        if !matches!(self.notify.file.as_str(), "" | "none" | "stdout") {
            self.notify.file = resolve(PathBuf::from(&self.notify.file))
                .display()
                .to_string();
        }
        if self.staging_branch.is_empty()
            || self.production_branch.is_empty()
            || self.staging_branch == self.production_branch
        {
            return Err(
                "deploy.staging_branch and deploy.production_branch must be two different branches"
                    .into(),
            );
        }
        let w = &self.notify.webhook;
        if !w.is_empty() && !w.starts_with("http://") && !w.starts_with("https://") {
            return Err(format!(
                "deploy.notify.webhook {w:?} must start with http:// or https://"
            ));
        }
        Ok(())
    }

    /// The record's path for a repository.
    pub fn store_path(&self, repo: &std::path::Path) -> PathBuf {
        self.store
            .clone()
            .unwrap_or_else(|| repo.join(".git").join("hephaestus").join("deploys.json"))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error("{0}")]
    Git(String),
    #[error("no fix {0}")]
    NoFix(String),
    #[error("fix {id} is {status}: {what}")]
    State {
        id: String,
        status: &'static str,
        what: &'static str,
    },
    #[error("{0}")]
    Command(String),
}
