//! Notifications of the loop: incident opened, fix proposed,
//! deployed, rolled back, successful.
//!
//! In: a `Notice`. Out: a webhook POST with the notice as JSON (its `text` field is what Slack's
//! incoming webhooks show) and/or one JSON line on a file or stdout. A webhook that fails is
//! tried three times, then reported; it never stops the loop. State: the HTTP client and the
//! line sink.

use std::io::Write;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

/// `[deploy.notify]`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct NotifyConfig {
    /// URL to POST each notice to (e.g. a Slack incoming webhook); empty for none.
    pub webhook: String,
    /// Notices as JSON lines: a file, `stdout`, or empty for none.
    pub file: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Notice {
    /// `incident_opened`, `fix_proposed`, `deployed`, `rolled_back`, `fix_successful`.
    pub event: String,
    pub text: String,
    pub fingerprint: String,
    pub fix: Option<String>,
    pub release: Option<String>,
    pub at: String,
}

pub struct Notifier {
    config: NotifyConfig,
    http: Option<reqwest::Client>,
    lines: Mutex<Option<Box<dyn Write + Send>>>,
}

impl Notifier {
    pub fn new(config: &NotifyConfig) -> Result<Notifier, String> {
        let lines: Option<Box<dyn Write + Send>> = match config.file.as_str() {
            "" | "none" => None,
            "stdout" => Some(Box::new(std::io::stdout())),
            path => Some(Box::new(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .map_err(|e| format!("notify file {path}: {e}"))?,
            )),
        };
        let http = if config.webhook.is_empty() {
            None
        } else {
            Some(
                reqwest::Client::builder()
                    .timeout(std::time::Duration::from_secs(10))
                    .build()
                    .map_err(|e| e.to_string())?,
            )
        };
        Ok(Notifier {
            config: config.clone(),
            http,
            lines: Mutex::new(lines),
        })
    }

    /// Sends a notice everywhere configured; the first failure, if any.
    pub async fn send(&self, notice: &Notice) -> Result<(), String> {
        eprintln!("hephaestus: {}", notice.text);
        if let Ok(mut out) = self.lines.lock()
            && let Some(w) = out.as_mut()
        {
            let line = serde_json::to_string(notice).map_err(|e| e.to_string())? + "\n";
            w.write_all(line.as_bytes())
                .and_then(|()| w.flush())
                .map_err(|e| format!("notify file: {e}"))?;
        }
        let Some(http) = &self.http else {
            return Ok(());
        };
        let mut last = String::new();
        for attempt in 0..3u32 {
            if attempt > 0 {
                tokio::time::sleep(std::time::Duration::from_millis(200 << attempt)).await;
            }
            match http.post(&self.config.webhook).json(notice).send().await {
                Ok(r) if r.status().is_success() => return Ok(()),
                Ok(r) => last = format!("HTTP {}", r.status()),
                Err(e) => last = e.to_string(),
            }
        }
        Err(format!("webhook {}: {last}", self.config.webhook))
    }
}
