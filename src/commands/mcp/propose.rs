//! `propose_fix`: an agent's patch, proven exactly like a model's fix, then handed to the
//! deployment loop like any other.
//!
//! In: an incident's fingerprint, a unified diff, and optionally the reproducing test (a diff
//! and the command that runs only it); without one, the spec's model backend writes the test.
//! Out: the new fix (id, status) when every validation step passed, or the validator's reason
//! and steps. State: none here; the fix store and the worktrees are the validator's and the
//! deployment loop's.

use serde::Deserialize;
use serde_json::{Value, json};

use super::catalog::{Catalog, ToolError, parse};
use crate::core::record::Incident;
use crate::model::composer::{self, FixAttempt, Outcome};
use crate::model::deploy::manager::Moved;
use crate::model::protocol::{Answer, FixProposal, Role, TestKind, TestProposal};
use crate::model::reproduction::Reproduction;
use crate::model::validator::{self, Validation};
use crate::model::{ModelConfig, admission::Level, backends, builtin, diff, edits};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProposeArgs {
    fingerprint: String,
    diff: String,
    explanation: Option<String>,
    test: Option<TestArg>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TestArg {
    /// Adds the reproducing test (new files or edits to test files).
    diff: String,
    /// Runs only that test: it must fail before the fix and pass after it.
    command: String,
}

fn bad_diff(what: &str, e: edits::EditError) -> ToolError {
    ToolError::Arguments {
        tool: "propose_fix".into(),
        why: format!("{what}: {e}"),
    }
}

/// The validator's steps, one line each.
fn steps_text(v: &Validation) -> String {
    v.steps
        .iter()
        .map(|s| format!("{} {}", if s.ok { "passed" } else { "FAILED" }, s.name))
        .collect::<Vec<_>>()
        .join("; ")
}

/// The reproducing test the spec's backend writes for `fix`.
async fn generated_test(
    model: &ModelConfig,
    incident: &Incident,
    fix: &FixProposal,
) -> Result<TestProposal, ToolError> {
    let mut req = composer::request(incident, &model.repository);
    req.analysis = Some(builtin::analyze(&req));
    req.fix = Some(fix.clone());
    req.role = Role::TestGenerator;
    req.attempt = 1;
    let backend = backends::backend(model).map_err(|e| ToolError::Deploy(e.to_string()))?;
    let no_test = |why: String| ToolError::Arguments {
        tool: "propose_fix".into(),
        why: format!(
            "no reproducing test: the {} backend could not write one ({why}); pass `test` with a diff that adds one and the command that runs it",
            backend.name()
        ),
    };
    match backend.call(&req).await {
        Ok(r) => match r.answer {
            Answer::Tests(t) => Ok(t),
            _ => Err(no_test("it answered something else".into())),
        },
        Err(e) => Err(no_test(e.to_string())),
    }
}

/// Validates the proposal and, when it passes, ships it into the deployment loop.
pub async fn propose(
    catalog: &std::sync::Arc<Catalog>,
    args: Value,
) -> Result<(Value, Moved), ToolError> {
    let a: ProposeArgs = parse("propose_fix", args)?;
    let model = catalog.model()?.clone();
    if model.repository.test_command.is_empty() {
        return Err(ToolError::NoStore(
            "the spec's [model.repository] has no test_command, so no fix can be validated".into(),
        ));
    }
    let line = catalog.incident(&a.fingerprint)?;
    let incident: Incident = serde_json::from_value(line)
        .map_err(|e| ToolError::Deploy(format!("the incident line is not readable: {e}")))?;
    let repo = &model.repository.path;
    let fix = FixProposal {
        edits: diff::edits(repo, &a.diff).map_err(|e| bad_diff("`diff`", e))?,
        explanation: a.explanation.unwrap_or_else(|| "proposed over MCP".into()),
    };
    let patch = edits::apply(repo, &fix.edits).map_err(|e| bad_diff("`diff`", e))?;
    let tests = match a.test {
        Some(t) => TestProposal {
            kind: TestKind::Unit,
            edits: diff::edits(repo, &t.diff).map_err(|e| bad_diff("`test.diff`", e))?,
            command: t.command,
        },
        None => generated_test(&model, &incident, &fix).await?,
    };
    let name = format!(
        "{}-mcp-{}-{}",
        incident.fingerprint,
        std::process::id(),
        crate::core::time::now_ms()
    );
    let expect = Reproduction::of(crate::trace::fault::Fault::of(&incident).as_ref());
    let (m, f, t) = (model.clone(), fix.clone(), tests.clone());
    let validation = tokio::task::spawn_blocking(move || {
        validator::validate(&m.repository, &m.sandbox, &name, (&t, &expect), &f)
    })
    .await
    .map_err(|e| ToolError::Deploy(format!("validation did not finish: {e}")))?
    .map_err(|e| ToolError::Deploy(format!("validation could not run: {e}")))?;
    if !validation.passed {
        return Err(ToolError::NotValidated(format!(
            "{} (steps: {})",
            validation.feedback,
            steps_text(&validation)
        )));
    }
    let steps = steps_text(&validation);
    let attempt = FixAttempt {
        fingerprint: incident.fingerprint.clone(),
        title: incident.title.clone(),
        attempt: 1,
        level: Level::Deploy,
        outcome: Outcome::Validated,
        analysis: None,
        fix: Some(fix),
        diff: Some(patch.diff),
        tests: Some(tests),
        validation: Some(validation),
        feedback: String::new(),
        usage: Default::default(),
        steps: Vec::new(),
    };
    let c = catalog.clone();
    let moved = tokio::task::spawn_blocking(move || c.ship(&attempt, &incident))
        .await
        .map_err(|e| ToolError::Deploy(format!("shipping did not finish: {e}")))??;
    let answer = json!({
        "validated": true,
        "steps": steps,
        "fix": {"id": moved.fix.id, "status": moved.fix.status.as_str(), "branch": moved.fix.branch, "commit": moved.fix.commit},
    });
    Ok((answer, moved))
}
