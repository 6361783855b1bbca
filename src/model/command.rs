//! The `command` backend: any program that reads a request as JSON on stdin and answers a
//! response as JSON on stdout (`protocol.rs`), so users can plug in their own agent.
//!
//! In: a `Request`. Out: the program's `Response`, or an error carrying its exit status and the
//! end of its stderr. The program runs with the stage's environment, in the repository, once per
//! call, killed after `timeout`. No state.

use std::path::PathBuf;
use std::process::Stdio;

use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt;

use super::protocol::{Backend, BackendError, Call, Request, Response};

/// `[model.command]`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct CommandConfig {
    pub program: String,
    pub args: Vec<String>,
    pub timeout: crate::core::time::Duration,
}

impl Default for CommandConfig {
    fn default() -> Self {
        CommandConfig {
            program: String::new(),
            args: Vec::new(),
            timeout: crate::core::time::Duration(120_000),
        }
    }
}

pub struct CommandBackend {
    pub config: CommandConfig,
    /// Working directory (the repository).
    pub dir: PathBuf,
}

impl CommandBackend {
    async fn ask(&self, request: &Request) -> Result<Response, BackendError> {
        let input =
            serde_json::to_vec(request).map_err(|e| BackendError::Invalid(e.to_string()))?;
        let mut child = tokio::process::Command::new(&self.config.program)
            .args(&self.config.args)
            .current_dir(&self.dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| BackendError::Unavailable(format!("{}: {e}", self.config.program)))?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin
                .write_all(&input)
                .await
                .map_err(|e| BackendError::Unavailable(e.to_string()))?;
        }
        let wait = std::time::Duration::from_millis(self.config.timeout.0.max(1) as u64);
        let out = match tokio::time::timeout(wait, child.wait_with_output()).await {
            Ok(out) => out.map_err(|e| BackendError::Unavailable(e.to_string()))?,
            Err(_) => {
                return Err(BackendError::Unavailable(format!(
                    "{} timed out",
                    self.config.program
                )));
            }
        };
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr);
            let tail: Vec<&str> = err.lines().rev().take(5).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            return Err(BackendError::Unavailable(format!(
                "{} exited with {}: {}",
                self.config.program,
                out.status,
                tail.join(" | ")
            )));
        }
        serde_json::from_slice(&out.stdout).map_err(|e| {
            BackendError::Invalid(format!("{}: not a response: {e}", self.config.program))
        })
    }
}

impl Backend for CommandBackend {
    fn name(&self) -> &'static str {
        "command"
    }

    fn call<'a>(&'a self, request: &'a Request) -> Call<'a> {
        Box::pin(self.ask(request))
    }
}
