//! The model-worker stage: de-duplicated incidents in, validated fixes out.
//!
//! In: incidents handed over by the dataflow (`stage.rs`: a bounded channel, never blocking a
//! worker). Out: one fix-attempt record per attempt (JSON lines) and a Markdown report per
//! incident. Inside: `admission.rs` decides what is worked on and how far; `composer.rs` runs the
//! state machine over the model pool (`protocol.rs`; backends `builtin/`, `openai.rs`,
//! `command.rs`); `validator.rs` proves fixes on worktrees in the `sandbox.rs`. This file: the
//! `[model]` section of a spec. State: none here.

pub mod admission;
pub mod attempt;
pub mod backends;
pub mod builtin;
pub mod command;
pub mod composer;
pub mod deploy;
pub mod diff;
pub mod edits;
pub mod fixes;
pub mod openai;
pub mod protocol;
pub mod queue;
pub mod reproduction;
pub mod sandbox;
pub mod stage;
pub mod validator;
pub mod worktree;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::core::time::Duration;
use admission::Level;

/// Which backend answers the model pool's roles.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    /// No model: classification, template fixes, reproducing tests, reports.
    #[default]
    Builtin,
    /// Any OpenAI-compatible chat-completions server (`[model.openai]`).
    Openai,
    /// A program speaking the protocol as JSON on stdin/stdout (`[model.command]`).
    Command,
}

/// `[model.budget]`: caps per incident and per day.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Budget {
    pub calls_per_incident: u32,
    pub tokens_per_incident: u64,
    pub usd_per_incident: f64,
    /// Spending beyond it today degrades new incidents to analysis only.
    pub usd_per_day: f64,
}

impl Default for Budget {
    fn default() -> Self {
        Budget {
            calls_per_incident: 20,
            tokens_per_incident: 200_000,
            usd_per_incident: 1.0,
            usd_per_day: 20.0,
        }
    }
}

/// `[model]`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ModelConfig {
    pub enabled: bool,
    pub backend: BackendKind,
    /// How far automation may go: `analysis`, `patch` or `deploy`.
    pub automation: Level,
    /// An incident is worked on once it has this many events.
    pub min_events: u64,
    /// Fix attempts per incident (validation failures go back to analysis with feedback).
    pub max_attempts: u32,
    /// Incidents waiting for the stage; beyond it updates of one fingerprint are merged.
    pub queue: usize,
    /// Incidents worked on at once.
    pub concurrency: usize,
    /// A fingerprint whose attempts all failed is left alone this long.
    pub negative_ttl: Duration,
    /// Fix-attempt records as JSON lines: a file, `stdout`, or `none`.
    pub attempts: String,
    /// Markdown reports, one per incident (`<fingerprint>.md`).
    pub reports_dir: Option<PathBuf>,
    pub budget: Budget,
    pub repository: validator::Project,
    pub sandbox: sandbox::Limits,
    pub command: command::CommandConfig,
    pub openai: openai::OpenAiConfig,
}

impl Default for ModelConfig {
    fn default() -> Self {
        ModelConfig {
            enabled: false,
            backend: BackendKind::Builtin,
            automation: Level::Patch,
            min_events: 1,
            max_attempts: 3,
            queue: 1024,
            concurrency: 2,
            negative_ttl: Duration(3_600_000),
            attempts: "none".into(),
            reports_dir: None,
            budget: Budget::default(),
            repository: validator::Project::default(),
            sandbox: sandbox::Limits::default(),
            command: command::CommandConfig::default(),
            openai: openai::OpenAiConfig::default(),
        }
    }
}

impl ModelConfig {
    /// Resolves relative paths against the spec's directory (`resolve`) and, when the stage is enabled, checks the section;
    /// an error names the key.
    pub fn plan(&mut self, resolve: impl Fn(PathBuf) -> PathBuf) -> Result<(), String> {
        let repo = &mut self.repository;
        repo.path = resolve(repo.path.clone());
        repo.work_dir = repo.work_dir.take().map(&resolve);
        self.reports_dir = self.reports_dir.take().map(&resolve);
        if !matches!(self.attempts.as_str(), "none" | "stdout" | "") {
            self.attempts = resolve(PathBuf::from(&self.attempts)).display().to_string();
        }
        if !self.enabled {
            return Ok(());
        }
        if self.automation > Level::Analysis && !repo.path.join(".git").exists() {
            return Err(format!(
                "model.repository.path {} is not a git checkout (fixes are validated on git worktrees); set it, or automation = \"analysis\"",
                repo.path.display()
            ));
        }
        if self.max_attempts == 0 || self.concurrency == 0 || self.queue == 0 {
            return Err(
                "model.max_attempts, model.concurrency and model.queue must be at least 1".into(),
            );
        }
        if repo.perf_factor.is_nan() || repo.perf_factor < 1.0 {
            return Err("model.repository.perf_factor must be at least 1.0".into());
        }
        match self.backend {
            BackendKind::Command if self.command.program.is_empty() => {
                Err("model.backend = \"command\" needs model.command.program".into())
            }
            BackendKind::Openai if self.openai.model.is_empty() => {
                Err("model.backend = \"openai\" needs model.openai.model".into())
            }
            BackendKind::Openai
                if !self.openai.base_url.starts_with("http://")
                    && !self.openai.base_url.starts_with("https://") =>
            {
                Err(format!(
                    "model.openai.base_url {:?} must start with http:// or https://",
                    self.openai.base_url
                ))
            }
            _ => Ok(()),
        }
    }
}
