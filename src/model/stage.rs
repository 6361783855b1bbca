//! The model-worker stage as it runs beside the dataflow: a tokio runtime on its own thread.
//!
//! In: incidents from the `Handoff` (the dataflow's incident sink on worker 0, or the incidents
//! topic with `hephaestus worker`). Out: fix-attempt records (JSON lines), a Markdown report per
//! worked incident, metrics, and a `StageSummary` when it finishes. Each incident passes
//! admission; started ones run through the composer, at most `concurrency` at once. State: the
//! admission book, the running tasks, the tallies.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::Serialize;
use tokio::sync::Semaphore;

use super::ModelConfig;
use super::admission::{Admission, Candidate, Decision, Gate, Level};
pub use super::backends::{StageError, backend, fixes_topic};
use super::composer::{Composer, Outcome, State as ComposerState, StepRecord, Worked};
use super::fixes::FixesTopic;
use super::protocol::Backend;
use super::queue::Handoff;
use crate::core::record::{Incident, State};
use crate::model::deploy::DeployConfig;
use crate::model::deploy::manager::Manager;
use crate::model::deploy::stage::{DeployLoop, Next};
use crate::trace::fault;

/// What the stage did, for the job summary and tests.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct StageSummary {
    pub offered: u64,
    pub started: u64,
    pub recurrences: u64,
    pub skipped: u64,
    pub validated: u64,
    pub rejected: u64,
    pub analysis_only: u64,
    pub budget_exhausted: u64,
    pub attempts: u64,
    pub cost_usd: f64,
    /// Records or reports that could not be written; the job fails with them.
    pub errors: Vec<String>,
}

/// Where attempt records and reports go.
struct Output {
    attempts: Mutex<Option<Box<dyn Write + Send>>>,
    reports: Option<PathBuf>,
    topic: Option<FixesTopic>,
}

impl Output {
    fn open(config: &ModelConfig, topic: Option<FixesTopic>) -> Result<Output, StageError> {
        let attempts: Option<Box<dyn Write + Send>> = match config.attempts.as_str() {
            "none" | "" => None,
            "stdout" => Some(Box::new(std::io::stdout())),
            path => {
                let path = Path::new(path);
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir)?;
                }
                Some(Box::new(
                    std::fs::OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(path)?,
                ))
            }
        };
        if let Some(dir) = &config.reports_dir {
            std::fs::create_dir_all(dir)?;
        }
        Ok(Output {
            attempts: Mutex::new(attempts),
            reports: config.reports_dir.clone(),
            topic,
        })
    }

    fn write(&self, fingerprint: &str, worked: &Worked) -> Result<(), String> {
        let mut buf = Vec::new();
        for a in &worked.attempts {
            serde_json::to_writer(&mut buf, a).map_err(|e| e.to_string())?;
            buf.push(b'\n');
        }
        if let Ok(mut out) = self.attempts.lock()
            && let Some(w) = out.as_mut()
        {
            w.write_all(&buf)
                .and_then(|()| w.flush())
                .map_err(|e| format!("writing fix attempts: {e}"))?;
        }
        if let Some(dir) = &self.reports {
            let path = dir.join(format!("{fingerprint}.md"));
            std::fs::write(&path, &worked.report)
                .map_err(|e| format!("writing {}: {e}", path.display()))?;
        }
        Ok(())
    }
}

fn outcome_name(o: Outcome) -> &'static str {
    match o {
        Outcome::Validated => "validated",
        Outcome::Rejected => "rejected",
        Outcome::AnalysisOnly => "analysis_only",
        Outcome::BudgetExhausted => "budget_exhausted",
    }
}

struct Shared {
    config: ModelConfig,
    gate: Gate,
    backend: Arc<dyn Backend>,
    output: Output,
    admission: Mutex<Admission>,
    summary: Mutex<StageSummary>,
    deploy: DeployLoop,
}

/// What the deployment loop knows about an incident the stage works on again.
#[derive(Default)]
struct Earlier {
    history: Vec<String>,
    rejected: Vec<String>,
}

impl Shared {
    fn tally(&self, f: impl FnOnce(&mut StageSummary)) {
        if let Ok(mut s) = self.summary.lock() {
            f(&mut s);
        }
    }

    async fn work(&self, incident: Incident, level: Level, earlier: Earlier) {
        let seen_at = crate::core::time::now_ms();
        self.deploy.opened(&incident).await;
        let composer = Composer {
            backend: self.backend.as_ref(),
            project: &self.config.repository,
            limits: &self.config.sandbox,
            budget: &self.config.budget,
            max_attempts: self.config.max_attempts,
            history: &earlier.history,
            rejected: &earlier.rejected,
        };
        let mut worked = composer.run(&incident, level).await;
        if worked.outcome == Outcome::Validated
            && level == Level::Deploy
            && let Some(last) = worked.attempts.last_mut()
        {
            let started = std::time::Instant::now();
            let note = self.deploy.ship(last, &incident, seen_at).await;
            worked
                .report
                .push_str(&format!("\n## Deployment\n\n{note}\n"));
            last.steps.push(StepRecord {
                state: ComposerState::Deployment,
                role: None,
                backend: "deploy".into(),
                seconds: started.elapsed().as_secs_f64(),
                usage: Default::default(),
                note,
            });
        }
        for a in &worked.attempts {
            crate::metrics::fix_attempt(outcome_name(a.outcome));
        }
        let mut written = self.output.write(&incident.fingerprint, &worked);
        if let (Ok(()), Some(topic)) = (&written, &self.output.topic) {
            written = topic.publish(&worked.attempts).await;
        }
        let now = crate::core::time::now_ms();
        if let Ok(mut adm) = self.admission.lock() {
            adm.spend(worked.usage.cost_usd, now);
            adm.finish(
                &self.gate,
                &incident.fingerprint,
                worked.outcome != Outcome::Rejected,
                now,
            );
        }
        self.tally(|s| {
            s.attempts += worked.attempts.len() as u64;
            s.cost_usd += worked.usage.cost_usd;
            match worked.outcome {
                Outcome::Validated => s.validated += 1,
                Outcome::Rejected => s.rejected += 1,
                Outcome::AnalysisOnly => s.analysis_only += 1,
                Outcome::BudgetExhausted => s.budget_exhausted += 1,
            }
            let finished = s.validated + s.rejected + s.analysis_only + s.budget_exhausted;
            crate::metrics::fix_success_ratio(s.validated, finished, s.cost_usd);
            if let Err(e) = written {
                s.errors.push(e);
            }
        });
        eprintln!(
            "hephaestus: model: incident {} ({}): {} after {} attempt(s), ${:.4}",
            incident.fingerprint,
            incident.title,
            outcome_name(worked.outcome),
            worked.attempts.len(),
            worked.usage.cost_usd
        );
    }
}

/// Whether a frame of the incident's trace is a file of the repository.
fn in_repository(incident: &Incident, repo: &Path) -> bool {
    fault::Fault::of(incident).is_some_and(|f| {
        f.frames
            .iter()
            .any(|fr| fault::locate(repo, &fr.path).is_some())
    })
}

async fn serve(shared: Arc<Shared>, handoff: Handoff) {
    let permits = Arc::new(Semaphore::new(shared.config.concurrency.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    while let Some(incident) = handoff.take().await {
        while tasks.try_join_next().is_some() {}
        let done = Done(handoff.clone());
        shared.tally(|s| s.offered += 1);
        let next = shared.deploy.watch(&incident).await;
        if matches!(incident.state, State::Resolved | State::Merged) {
            continue;
        }
        let earlier = match next {
            Next::Hold => {
                crate::metrics::model_admission("recurrence");
                shared.tally(|s| s.recurrences += 1);
                continue;
            }
            Next::Rework { history, rejected } => {
                if let Ok(mut a) = shared.admission.lock() {
                    a.reopen(&incident.fingerprint);
                }
                Earlier { history, rejected }
            }
            Next::Admit => Earlier::default(),
        };
        let candidate = Candidate {
            fingerprint: &incident.fingerprint,
            events: incident.count,
            in_repository: in_repository(&incident, &shared.config.repository.path),
        };
        let decision = match shared.admission.lock() {
            Ok(mut a) => a.decide(&shared.gate, &candidate, crate::core::time::now_ms()),
            Err(_) => Decision::Skip("admission unavailable".into()),
        };
        match decision {
            Decision::Start(level) => {
                crate::metrics::model_admission(match level {
                    Level::Analysis => "start_analysis",
                    Level::Patch => "start_patch",
                    Level::Deploy => "start_deploy",
                });
                shared.tally(|s| s.started += 1);
                // Waiting here lets the handoff merge updates while every slot is busy.
                let Ok(permit) = permits.clone().acquire_owned().await else {
                    break;
                };
                let shared = shared.clone();
                tasks.spawn(async move {
                    shared.work(incident, level, earlier).await;
                    drop((permit, done));
                });
            }
            Decision::Recurrence => {
                crate::metrics::model_admission("recurrence");
                shared.tally(|s| s.recurrences += 1);
            }
            Decision::Skip(_) => {
                crate::metrics::model_admission("skip");
                shared.tally(|s| s.skipped += 1);
            }
        }
    }
    while let Some(done) = tasks.join_next().await {
        if let Err(e) = done {
            shared.tally(|s| s.errors.push(format!("model task failed: {e}")));
        }
    }
}

/// Tells the handoff an incident is done with when dropped, whichever way its handling ends.
struct Done(Handoff);

impl Drop for Done {
    fn drop(&mut self) {
        self.0.done();
    }
}

/// The running stage.
pub struct Stage {
    handoff: Handoff,
    thread: Option<std::thread::JoinHandle<StageSummary>>,
}

impl Stage {
    /// Starts the stage; `fixes` also sends every attempt record to the fixes topic; `deploy`
    /// ships validated fixes when `automation = "deploy"`, and says where notices go.
    pub fn start(
        config: ModelConfig,
        fixes: Option<FixesTopic>,
        deploy: &DeployConfig,
    ) -> Result<Stage, StageError> {
        let backend = backend(&config)?;
        let output = Output::open(&config, fixes)?;
        let manager = if config.automation == Level::Deploy {
            Some(
                Manager::new(deploy, &config.repository, &config.sandbox)
                    .map_err(|e| StageError::Config(e.to_string()))?,
            )
        } else {
            None
        };
        let deploy = DeployLoop::new(deploy, manager).map_err(StageError::Config)?;
        let gate = Gate {
            max_level: config.automation,
            min_events: config.min_events,
            has_tests: !config.repository.test_command.is_empty(),
            negative_ttl_ms: config.negative_ttl.0,
            usd_per_day: config.budget.usd_per_day,
        };
        let handoff = Handoff::new(config.queue);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("hephaestus-model")
            .enable_all()
            .build()?;
        let shared = Arc::new(Shared {
            config,
            gate,
            backend,
            output,
            admission: Mutex::default(),
            summary: Mutex::default(),
            deploy,
        });
        let queue = handoff.clone();
        let thread = std::thread::Builder::new()
            .name("hephaestus-model".into())
            .spawn(move || {
                runtime.block_on(serve(shared.clone(), queue));
                let mut summary = shared.summary.lock().map(|s| s.clone()).unwrap_or_default();
                if let Ok(e) = shared.deploy.errors.lock() {
                    summary.errors.extend(e.iter().cloned());
                }
                summary
            })?;
        Ok(Stage {
            handoff,
            thread: Some(thread),
        })
    }

    /// Nothing waiting and nothing being worked on.
    pub fn idle(&self) -> bool {
        self.handoff.idle()
    }

    /// Where the dataflow hands incidents over.
    pub fn handoff(&self) -> Handoff {
        self.handoff.clone()
    }

    /// No more incidents: waits until every waiting and running one is worked on.
    pub fn finish(mut self) -> StageSummary {
        self.handoff.close();
        let thread = self.thread.take();
        thread
            .and_then(|t| t.join().ok())
            .unwrap_or_else(|| StageSummary {
                errors: vec!["the model stage's thread panicked".into()],
                ..StageSummary::default()
            })
    }
}

impl Drop for Stage {
    fn drop(&mut self) {
        self.handoff.close();
    }
}
