//! The composer: the state machine from an incident to a validated fix.
//!
//! In: an incident, the automation level admission allowed, a backend (with `builtin` as the
//! fallback when it fails). Out: `Worked`: one `FixAttempt` record per attempt (every step with
//! its role, backend, time, tokens and cost), the outcome and the Markdown report. The machine:
//! ErrorAnalysis → SyntaxAnalysis | LogicAnalysis → SyntaxFix | LogicFix → UnitTests |
//! IntegrationTests → ValidationPhase → Deployment, or back to ErrorAnalysis with the
//! validator's feedback, at most `max_attempts` times. State: the per-incident tally against
//! the budget.

use super::Budget;
use super::admission::Level;
use super::builtin;
use super::edits;
use super::protocol::*;
use super::sandbox::Limits;
use super::validator::{self, Project, Validation};
use crate::core::record::Incident;
use crate::model::reproduction::Reproduction;
use crate::trace::fault::Fault;

use super::attempt::attempts_section;
pub use super::attempt::{FixAttempt, Outcome, State, StepRecord, Worked};

pub struct Composer<'a> {
    pub backend: &'a dyn Backend,
    pub project: &'a Project,
    pub limits: &'a Limits,
    pub budget: &'a Budget,
    pub max_attempts: u32,
    /// What happened to earlier fixes of this incident (e.g. rolled back after shipping): the
    /// first attempt's feedback.
    pub history: &'a [String],
    /// Diffs that must not be proposed again (fixes that shipped and were rolled back).
    pub rejected: &'a [String],
}

/// Why an incident's work stopped early.
enum Stop {
    NoAnswer(String),
    Budget(String),
}

/// Calls, tokens and money spent on one incident.
#[derive(Default)]
struct Tally {
    calls: u32,
    usage: Usage,
}

fn add(a: &mut Usage, b: &Usage) {
    a.prompt_tokens += b.prompt_tokens;
    a.completion_tokens += b.completion_tokens;
    a.cost_usd += b.cost_usd;
}

/// The request for an incident: its brief, fault, and the repository files its frames touch.
pub fn request(incident: &Incident, project: &Project) -> Request {
    let fault = Fault::of(incident);
    let mut files: Vec<SourceFile> = Vec::new();
    for frame in fault.iter().flat_map(|f| f.frames.iter()) {
        let Some(path) = crate::trace::fault::locate(&project.path, &frame.path) else {
            continue;
        };
        if files.len() >= 5 || files.iter().any(|f| f.path == path) {
            continue;
        }
        if let Ok(content) = std::fs::read_to_string(project.path.join(&path)) {
            files.push(SourceFile {
                path,
                content: crate::core::record::truncate(&content, 64 * 1024),
            });
        }
    }
    Request {
        role: Role::LogicAnalyzer,
        incident: IncidentBrief {
            fingerprint: incident.fingerprint.clone(),
            title: incident.title.clone(),
            template: incident.template.clone(),
            count: incident.count,
            samples: incident.samples.clone(),
            exemplar_trace: incident.exemplar_trace.clone(),
        },
        language: fault.as_ref().map_or("unknown".into(), |f| {
            format!("{:?}", f.language).to_lowercase()
        }),
        fault,
        files,
        test_command: project.test_command.clone(),
        analysis: None,
        fix: None,
        feedback: Vec::new(),
        attempt: 1,
    }
}

impl Composer<'_> {
    /// One role's answer: from the backend, or from `builtin` when the backend fails.
    async fn ask(
        &self,
        state: State,
        role: Role,
        req: &mut Request,
        tally: &mut Tally,
        steps: &mut Vec<StepRecord>,
    ) -> Result<Answer, Stop> {
        let b = self.budget;
        if tally.calls >= b.calls_per_incident
            || tally.usage.prompt_tokens + tally.usage.completion_tokens >= b.tokens_per_incident
            || tally.usage.cost_usd >= b.usd_per_incident
        {
            return Err(Stop::Budget(format!(
                "per-incident budget reached after {} calls, ${:.4}",
                tally.calls, tally.usage.cost_usd
            )));
        }
        req.role = role;
        let mut backends: Vec<&dyn Backend> = vec![self.backend];
        if self.backend.name() != "builtin" {
            backends.push(&builtin::Builtin);
        }
        let mut last = String::new();
        for backend in backends {
            let started = std::time::Instant::now();
            tally.calls += 1;
            let result = backend.call(req).await.and_then(|r| r.for_role(role));
            let seconds = started.elapsed().as_secs_f64();
            let u = result.as_ref().map(|r| r.usage).unwrap_or_default();
            crate::metrics::model_call(
                backend.name(),
                role.as_str(),
                seconds,
                (u.prompt_tokens, u.completion_tokens, u.cost_usd),
                result.is_ok(),
            );
            match result {
                Ok(r) => {
                    add(&mut tally.usage, &r.usage);
                    steps.push(StepRecord {
                        state,
                        role: Some(role),
                        backend: backend.name().into(),
                        seconds,
                        usage: r.usage,
                        note: String::new(),
                    });
                    return Ok(r.answer);
                }
                Err(e) => {
                    steps.push(StepRecord {
                        state,
                        role: Some(role),
                        backend: backend.name().into(),
                        seconds,
                        usage: Usage::default(),
                        note: e.to_string(),
                    });
                    last = e.to_string();
                    if matches!(e, BackendError::Unsupported(_)) && backend.name() == "builtin" {
                        break;
                    }
                }
            }
        }
        Err(Stop::NoAnswer(last))
    }

    /// Works on `incident` up to `level`.
    pub async fn run(&self, incident: &Incident, level: Level) -> Worked {
        let mut req = request(incident, self.project);
        req.feedback = self.history.to_vec();
        let mut tally = Tally::default();
        let mut attempts: Vec<FixAttempt> = Vec::new();
        let mut outcome = Outcome::Rejected;
        for n in 1..=self.max_attempts.max(1) {
            req.attempt = n;
            let mut a = FixAttempt {
                fingerprint: incident.fingerprint.clone(),
                title: incident.title.clone(),
                attempt: n,
                level,
                outcome: Outcome::Rejected,
                analysis: None,
                fix: None,
                diff: None,
                tests: None,
                validation: None,
                feedback: String::new(),
                usage: Usage::default(),
                steps: Vec::new(),
            };
            let before = tally.usage;
            let result = self.attempt(&mut req, level, &mut tally, &mut a).await;
            a.usage = Usage {
                prompt_tokens: tally.usage.prompt_tokens - before.prompt_tokens,
                completion_tokens: tally.usage.completion_tokens - before.completion_tokens,
                cost_usd: tally.usage.cost_usd - before.cost_usd,
            };
            a.outcome = match result {
                Ok(o) => o,
                Err(Stop::NoAnswer(why)) => {
                    a.feedback = why;
                    Outcome::AnalysisOnly
                }
                Err(Stop::Budget(why)) => {
                    a.feedback = why;
                    Outcome::BudgetExhausted
                }
            };
            outcome = a.outcome;
            let retry = a.outcome == Outcome::Rejected;
            if retry {
                req.feedback.push(format!("attempt {n}: {}", a.feedback));
            }
            attempts.push(a);
            if !retry {
                break;
            }
        }
        let mut steps = Vec::new();
        let report = match self
            .ask(
                State::Report,
                Role::DocGenerator,
                &mut req,
                &mut tally,
                &mut steps,
            )
            .await
        {
            Ok(Answer::Report(r)) => r.markdown,
            _ => builtin::report_for(&req),
        };
        if let Some(last) = attempts.last_mut() {
            last.steps.extend(steps);
        }
        let report = format!(
            "{}\n{}",
            report.trim_end(),
            attempts_section(&attempts, outcome)
        );
        Worked {
            attempts,
            outcome,
            report,
            usage: tally.usage,
        }
    }

    async fn attempt(
        &self,
        req: &mut Request,
        level: Level,
        tally: &mut Tally,
        a: &mut FixAttempt,
    ) -> Result<Outcome, Stop> {
        // ErrorAnalysis: the builtin classifier decides the branch (and gates infrastructure).
        let first = builtin::analyze(req);
        a.steps.push(StepRecord {
            state: State::ErrorAnalysis,
            role: None,
            backend: "builtin".into(),
            seconds: 0.0,
            usage: Usage::default(),
            note: first.summary.clone(),
        });
        req.analysis = Some(first.clone());
        a.analysis = Some(first.clone());
        if first.kind == ErrorKind::Infrastructure || level == Level::Analysis {
            return Ok(Outcome::AnalysisOnly);
        }
        let syntax = first.kind == ErrorKind::Syntax;
        let (state, role) = if syntax {
            (State::SyntaxAnalysis, Role::SyntaxAnalyzer)
        } else {
            (State::LogicAnalysis, Role::LogicAnalyzer)
        };
        if let Answer::Analysis(an) = self.ask(state, role, req, tally, &mut a.steps).await? {
            req.analysis = Some(an.clone());
            a.analysis = Some(an);
        }
        let state = if syntax {
            State::SyntaxFix
        } else {
            State::LogicFix
        };
        let Answer::Fix(fix) = self
            .ask(state, Role::CodeFixer, req, tally, &mut a.steps)
            .await?
        else {
            return Err(Stop::NoAnswer("no fix".into()));
        };
        a.fix = Some(fix.clone());
        req.fix = Some(fix.clone());
        match edits::apply(&self.project.path, &fix.edits) {
            Ok(p) if self.rejected.contains(&p.diff) => {
                a.diff = Some(p.diff);
                a.feedback = "this is the fix that shipped and was rolled back because the error came back: the root cause is elsewhere".into();
                return Ok(Outcome::Rejected);
            }
            Ok(p) => a.diff = Some(p.diff),
            Err(e) => {
                a.feedback = format!("the fix's edits are invalid: {e}");
                return Ok(Outcome::Rejected);
            }
        }
        let integration = !self.project.integration_command.is_empty() && req.files.len() > 1;
        let state = if integration {
            State::IntegrationTests
        } else {
            State::UnitTests
        };
        let Answer::Tests(tests) = self
            .ask(state, Role::TestGenerator, req, tally, &mut a.steps)
            .await?
        else {
            return Err(Stop::NoAnswer("no test".into()));
        };
        a.tests = Some(tests.clone());
        let started = std::time::Instant::now();
        let name = format!(
            "{}-{}-{}-{}",
            req.incident.fingerprint,
            a.attempt,
            std::process::id(),
            crate::core::time::now_ms()
        );
        let (project, limits) = (self.project.clone(), self.limits.clone());
        let expect = Reproduction::of(req.fault.as_ref());
        let validation = tokio::task::spawn_blocking(move || {
            validator::validate(&project, &limits, &name, (&tests, &expect), &fix)
        })
        .await;
        let validation = match validation {
            Ok(Ok(v)) => v,
            Ok(Err(e)) => Validation {
                passed: false,
                steps: Vec::new(),
                feedback: format!("validation could not run: {e}"),
            },
            Err(e) => Validation {
                passed: false,
                steps: Vec::new(),
                feedback: format!("validation panicked: {e}"),
            },
        };
        let note = if validation.passed {
            "all steps passed".to_string()
        } else {
            validation.feedback.clone()
        };
        a.steps.push(StepRecord {
            state: State::ValidationPhase,
            role: None,
            backend: "sandbox".into(),
            seconds: started.elapsed().as_secs_f64(),
            usage: Usage::default(),
            note,
        });
        let passed = validation.passed;
        a.feedback = validation.feedback.clone();
        a.validation = Some(validation);
        if !passed {
            return Ok(Outcome::Rejected);
        }
        Ok(Outcome::Validated)
    }
}
