//! The `hephaestus` binary: parses the command line, wires Ctrl-C to a graceful shutdown, runs
//! the library, and maps errors to a one-line message and an exit code.

use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;

use hephaestus::cli::{Cli, Command};
use hephaestus::core::shutdown::Shutdown;
use hephaestus::job;
use hephaestus::spec::{Overrides, Plan};

/// Records are many small strings: mimalloc's thread-local free lists make them cheap (glibc's
/// malloc took half of the parse-to-incident time on BGL).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's `mi_option_purge_delay` (its v2 option enum, which libmimalloc-sys 0.1.49 built
/// by default does not name).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

fn main() -> ExitCode {
    // Epochs are allocated and freed every few milliseconds: purging freed pages after
    // mimalloc's default 10 ms only hands them back to fault them in again (a quarter of the
    // time went to the kernel on BGL); keep them for a second.
    // SAFETY: a plain process-wide option, set before any other thread exists.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 1000) };
    stop_when_a_peer_is_lost();
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("hephaestus: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// A multi-process job whose peer process died: timely's network threads panic ("timely
/// communication error: …") and the workers after them. Say so once, plainly, and exit at once:
/// the job cannot go on without the peer, everything on disk is whole (state and cuts are
/// written atomically; outputs are cut back to the last cut on restart).
fn stop_when_a_peer_is_lost() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or_default();
        if message.starts_with("timely communication error") {
            // timely names its network threads `timely:send-<process>` and `timely:recv-<process>`.
            let thread = std::thread::current();
            let peer = thread
                .name()
                .and_then(|n| n.rsplit('-').next())
                .unwrap_or("?");
            eprintln!(
                "hephaestus: error: this process lost its connection to process {peer} \
                 ({message}); the job stops. Start every process again: they resume from the \
                 last checkpoint all of them completed."
            );
            std::process::exit(3);
        }
        default(info);
    }));
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Check { spec } => {
            let plan = Plan::load(
                &spec,
                Overrides {
                    no_metrics: true,
                    ..Overrides::default()
                },
            )?;
            println!(
                "{}: ok ({} inputs, {} workers)",
                spec.display(),
                plan.inputs.len(),
                plan.workers
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Templates(args) => {
            let req = hephaestus::commands::templates::Request {
                file: args.file,
                log_format: args.log_format,
                workers: args.workers,
                assignments: args.assignments,
                templates: args.templates,
                cluster: hephaestus::cluster::ClusterConfig::default(),
            };
            let report = hephaestus::commands::templates::run(&req)?;
            eprintln!("hephaestus: templates {}", serde_json::to_string(&report)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Replay(args) => {
            let req = args.request().map_err(anyhow::Error::msg)?;
            let shutdown = Shutdown::default();
            on_interrupt(shutdown.clone());
            let report = hephaestus::commands::replay::replay(&req, &shutdown)?;
            eprintln!("hephaestus: replay {}", serde_json::to_string(&report)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Generate(args) => {
            let spec = args.spec().map_err(anyhow::Error::msg)?;
            let mut out: Box<dyn std::io::Write> = match &args.output {
                Some(p) => Box::new(std::io::BufWriter::new(
                    std::fs::File::create(p).with_context(|| p.display().to_string())?,
                )),
                None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
            };
            let errors = hephaestus::commands::generate::generate(&spec, &mut out)?;
            out.flush()?;
            eprintln!(
                "hephaestus: generated {} lines, {errors} error events",
                spec.lines
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Fixes(args) => {
            let out = hephaestus::commands::deploy::run(&args.spec, &args.action.action())?;
            print!("{out}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Mcp(args) => {
            let shutdown = Shutdown::default();
            on_interrupt(shutdown.clone());
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()?;
            rt.block_on(hephaestus::commands::mcp::serve(&args.args(), shutdown))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Worker(args) => {
            let options = args.options().map_err(anyhow::Error::msg)?;
            let shutdown = Shutdown::default();
            on_interrupt(shutdown.clone());
            let summary = hephaestus::commands::worker::run(&args.spec, &options, &shutdown)
                .context("worker failed")?;
            eprintln!(
                "hephaestus: worker summary {}",
                serde_json::to_string(&summary)?
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Run(args) => {
            let overrides = args.overrides().map_err(anyhow::Error::msg)?;
            let plan = Plan::load(&args.spec, overrides)?;
            let summary_on = plan.summary;
            let shutdown = Shutdown::default();
            on_interrupt(shutdown.clone());
            let summary = job::run(plan, shutdown).context("job failed")?;
            if summary_on {
                eprintln!("hephaestus: summary {}", serde_json::to_string(&summary)?);
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The first Ctrl-C or SIGTERM asks for a graceful stop; a second one exits at once.
fn on_interrupt(shutdown: Shutdown) {
    let spawned = std::thread::Builder::new().name("signals".into()).spawn(move || {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
        rt.block_on(async {
            let Ok(mut term) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) else { return };
            for round in 0..2 {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
                if round == 0 {
                    eprintln!("hephaestus: stopping (flushing open incidents); interrupt again to exit now");
                    shutdown.trigger();
                } else {
                    std::process::exit(130);
                }
            }
        });
    });
    if let Err(e) = spawned {
        eprintln!("hephaestus: warning: no signal handling: {e}");
    }
}
