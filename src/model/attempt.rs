//! What one attempt at a fix leaves behind: its steps (role, backend, time, tokens, cost), its
//! outcome, and the attempts section of the incident's report.
//!
//! In: the composer's steps. Out: `FixAttempt` records (serialized to the fixes topic and the
//! fix store) and Markdown. No state.

use serde::{Deserialize, Serialize};

use super::admission::Level;
use super::protocol::*;
use super::validator::Validation;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum State {
    ErrorAnalysis,
    SyntaxAnalysis,
    LogicAnalysis,
    SyntaxFix,
    LogicFix,
    UnitTests,
    IntegrationTests,
    ValidationPhase,
    Deployment,
    Report,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StepRecord {
    pub state: State,
    pub role: Option<Role>,
    pub backend: String,
    pub seconds: f64,
    pub usage: Usage,
    pub note: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The fix passed every validation step.
    Validated,
    /// Validation failed (for an attempt), or every attempt failed (for the incident).
    Rejected,
    /// Classified and reported; no patch (the level, the error kind, or no fix).
    AnalysisOnly,
    /// A per-incident cap was reached.
    BudgetExhausted,
}

/// One attempt, as written to the fix-attempt records (and the fixes topic).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FixAttempt {
    pub fingerprint: String,
    pub title: String,
    pub attempt: u32,
    pub level: Level,
    pub outcome: Outcome,
    pub analysis: Option<Analysis>,
    pub fix: Option<FixProposal>,
    /// The diff the stage built from the fix's edits.
    pub diff: Option<String>,
    pub tests: Option<TestProposal>,
    pub validation: Option<Validation>,
    /// Why this attempt did not validate (fed to the next one).
    pub feedback: String,
    pub usage: Usage,
    pub steps: Vec<StepRecord>,
}

pub struct Worked {
    pub attempts: Vec<FixAttempt>,
    pub outcome: Outcome,
    pub report: String,
    pub usage: Usage,
}

/// The report's record of the attempts, written by the stage (not by a model): what was tried
/// and what the validator said.
pub(super) fn attempts_section(attempts: &[FixAttempt], outcome: Outcome) -> String {
    let mut md = format!(
        "\n## Attempts\n\nOutcome: **{outcome:?}** after {} attempt(s).\n",
        attempts.len()
    );
    for a in attempts {
        md.push_str(&format!(
            "\n### Attempt {} ({:?}, level {:?})\n\n",
            a.attempt, a.outcome, a.level
        ));
        if let Some(v) = &a.validation {
            for s in &v.steps {
                md.push_str(&format!(
                    "- {} {} ({:.1} s)\n",
                    if s.ok { "✔" } else { "✘" },
                    s.name,
                    s.seconds
                ));
            }
        }
        if !a.feedback.is_empty() {
            md.push_str(&format!("\n```text\n{}\n```\n", a.feedback.trim_end()));
        }
        let u = &a.usage;
        if u.prompt_tokens + u.completion_tokens > 0 {
            md.push_str(&format!(
                "\nTokens: {} prompt, {} completion; ${:.4}.\n",
                u.prompt_tokens, u.completion_tokens, u.cost_usd
            ));
        }
    }
    md
}
