//! The `openai` backend: any OpenAI-compatible chat-completions server (vLLM, Ollama, llama.cpp
//! server, OpenAI itself).
//!
//! In: a `Request`. Out: the role's answer with its token usage priced into dollars. A call is
//! retried with exponential backoff on 429, 5xx, timeouts and connection errors, waiting at
//! least what `Retry-After` says; a quota error (`insufficient_quota`) is never retried. A reply
//! that is not the role's JSON is re-asked once with the reason. After `breaker_failures` failed
//! calls in a row the circuit opens for `breaker_cooldown`: calls fail at once and the composer
//! falls back to `builtin`. State: the circuit breaker.

mod prompts;

use std::sync::Mutex;
use std::time::{Duration as StdDuration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::protocol::{Backend, BackendError, Call, Request, Response, Usage};
use crate::core::time::Duration;

/// `[model.openai]`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct OpenAiConfig {
    /// Up to and including `/v1`, e.g. `http://127.0.0.1:11434/v1` for Ollama.
    pub base_url: String,
    pub model: String,
    /// The environment variable holding the API key; none is sent when it is unset or empty.
    pub api_key_env: String,
    /// Dollars per million prompt and completion tokens (0 for a local server).
    pub usd_per_mtok_prompt: f64,
    pub usd_per_mtok_completion: f64,
    pub max_tokens: u32,
    pub temperature: f64,
    /// Ask for `response_format: json_object` (turn off for servers that reject it).
    pub json_mode: bool,
    /// One HTTP request.
    pub timeout: Duration,
    pub max_retries: u32,
    /// First backoff; doubled per retry up to `max_backoff`.
    pub backoff: Duration,
    pub max_backoff: Duration,
    pub breaker_failures: u32,
    pub breaker_cooldown: Duration,
}

impl Default for OpenAiConfig {
    fn default() -> Self {
        OpenAiConfig {
            base_url: "http://127.0.0.1:11434/v1".into(),
            model: String::new(),
            api_key_env: "OPENAI_API_KEY".into(),
            usd_per_mtok_prompt: 0.0,
            usd_per_mtok_completion: 0.0,
            max_tokens: 4096,
            temperature: 0.0,
            json_mode: true,
            timeout: Duration(120_000),
            max_retries: 4,
            backoff: Duration(1_000),
            max_backoff: Duration(60_000),
            breaker_failures: 5,
            breaker_cooldown: Duration(300_000),
        }
    }
}

#[derive(Default)]
struct Breaker {
    failures: u32,
    open_until: Option<Instant>,
}

pub struct OpenAi {
    config: OpenAiConfig,
    http: reqwest::Client,
    url: String,
    key: Option<String>,
    breaker: Mutex<Breaker>,
}

/// One HTTP exchange's result.
enum Sent {
    Reply(String, Usage),
    Retry(String, Option<StdDuration>),
    Fail(BackendError),
}

fn ms(d: Duration) -> StdDuration {
    StdDuration::from_millis(d.0.max(0) as u64)
}

impl OpenAi {
    pub fn new(config: &OpenAiConfig) -> Result<OpenAi, BackendError> {
        if config.model.is_empty() {
            return Err(BackendError::Invalid(
                "[model.openai] model is required".into(),
            ));
        }
        let http = reqwest::Client::builder()
            .timeout(ms(config.timeout))
            .build()
            .map_err(|e| BackendError::Unavailable(e.to_string()))?;
        let key = std::env::var(&config.api_key_env)
            .ok()
            .filter(|k| !k.is_empty());
        Ok(OpenAi {
            url: format!("{}/chat/completions", config.base_url.trim_end_matches('/')),
            config: config.clone(),
            http,
            key,
            breaker: Mutex::default(),
        })
    }

    fn cost(&self, prompt: u64, completion: u64) -> f64 {
        (prompt as f64 * self.config.usd_per_mtok_prompt
            + completion as f64 * self.config.usd_per_mtok_completion)
            / 1e6
    }

    async fn send(&self, messages: &serde_json::Value) -> Sent {
        let mut body = json!({
            "model": self.config.model,
            "messages": messages,
            "temperature": self.config.temperature,
            "max_tokens": self.config.max_tokens,
        });
        if self.config.json_mode {
            body["response_format"] = json!({"type": "json_object"});
        }
        let mut rq = self
            .http
            .post(&self.url)
            .header("content-type", "application/json")
            .body(body.to_string());
        if let Some(key) = &self.key {
            rq = rq.bearer_auth(key);
        }
        let resp = match rq.send().await {
            Ok(r) => r,
            Err(e) => return Sent::Retry(format!("{}: {e}", self.url), None),
        };
        let status = resp.status();
        let retry_after = resp
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<f64>().ok())
            .map(|s| StdDuration::from_secs_f64(s.clamp(0.0, 3600.0)));
        let text = match resp.text().await {
            Ok(t) => t,
            Err(e) => return Sent::Retry(format!("reading the reply: {e}"), None),
        };
        if status.as_u16() == 429 || status.is_server_error() {
            if text.contains("insufficient_quota") {
                return Sent::Fail(BackendError::Quota(crate::core::record::truncate(
                    &text, 300,
                )));
            }
            return Sent::Retry(format!("HTTP {status}"), retry_after);
        }
        if !status.is_success() {
            return Sent::Fail(BackendError::Unavailable(format!(
                "HTTP {status}: {}",
                crate::core::record::truncate(&text, 300)
            )));
        }
        parse_completion(&text, |p, c| self.cost(p, c))
    }

    /// Sends with retries; the reply's text and usage.
    async fn complete(
        &self,
        messages: &serde_json::Value,
    ) -> Result<(String, Usage), BackendError> {
        let mut wait = ms(self.config.backoff);
        let mut last = String::new();
        for attempt in 0..=self.config.max_retries {
            match self.send(messages).await {
                Sent::Reply(text, usage) => return Ok((text, usage)),
                Sent::Fail(e) => return Err(e),
                Sent::Retry(why, after) => {
                    last = why;
                    if attempt == self.config.max_retries {
                        break;
                    }
                    // Retry-After is a floor: the server knows when it will take calls again.
                    let pause = after.map_or(wait, |a| a.max(wait));
                    tokio::time::sleep(pause).await;
                    wait = (wait * 2).min(ms(self.config.max_backoff));
                }
            }
        }
        Err(BackendError::Unavailable(format!(
            "{} retries: {last}",
            self.config.max_retries
        )))
    }

    async fn ask(&self, req: &Request) -> Result<Response, BackendError> {
        let open = self
            .breaker
            .lock()
            .is_ok_and(|b| b.open_until.is_some_and(|t| Instant::now() < t));
        if open {
            return Err(BackendError::Unavailable(
                "circuit open after repeated failures".into(),
            ));
        }
        let result = self.ask_once(req).await;
        if let Ok(mut b) = self.breaker.lock() {
            match &result {
                Ok(_) | Err(BackendError::Invalid(_)) => *b = Breaker::default(),
                Err(e) => {
                    b.failures += 1;
                    if b.failures >= self.config.breaker_failures.max(1)
                        || matches!(e, BackendError::Quota(_))
                    {
                        b.open_until = Some(Instant::now() + ms(self.config.breaker_cooldown));
                        b.failures = 0;
                    }
                }
            }
        }
        result
    }

    async fn ask_once(&self, req: &Request) -> Result<Response, BackendError> {
        let mut messages = prompts::messages(req);
        let (reply, mut usage) = self.complete(&messages).await?;
        let why = match prompts::answer(req.role, &reply) {
            Ok(answer) => return Ok(Response { answer, usage }),
            Err(why) => why,
        };
        // Re-ask once, showing the model its answer and what is wrong with it.
        if let Some(list) = messages.as_array_mut() {
            list.push(json!({"role": "assistant", "content": reply}));
            list.push(json!({"role": "user", "content": format!("{why}. Answer again with only the JSON object.")}));
        }
        let (reply, more) = self.complete(&messages).await?;
        usage.prompt_tokens += more.prompt_tokens;
        usage.completion_tokens += more.completion_tokens;
        usage.cost_usd += more.cost_usd;
        prompts::answer(req.role, &reply)
            .map(|answer| Response { answer, usage })
            .map_err(BackendError::Invalid)
    }
}

#[derive(Deserialize)]
struct Completion {
    choices: Vec<Choice>,
    #[serde(default)]
    usage: Option<TokenUsage>,
}

#[derive(Deserialize)]
struct Choice {
    message: Message,
}

#[derive(Deserialize)]
struct Message {
    #[serde(default)]
    content: Option<String>,
}

#[derive(Deserialize)]
struct TokenUsage {
    #[serde(default)]
    prompt_tokens: u64,
    #[serde(default)]
    completion_tokens: u64,
}

fn parse_completion(text: &str, cost: impl Fn(u64, u64) -> f64) -> Sent {
    let c: Completion = match serde_json::from_str(text) {
        Ok(c) => c,
        Err(e) => return Sent::Retry(format!("not a chat completion: {e}"), None),
    };
    let usage = c.usage.map_or(Usage::default(), |u| Usage {
        prompt_tokens: u.prompt_tokens,
        completion_tokens: u.completion_tokens,
        cost_usd: cost(u.prompt_tokens, u.completion_tokens),
    });
    match c
        .choices
        .into_iter()
        .next()
        .and_then(|ch| ch.message.content)
    {
        Some(content) => Sent::Reply(content, usage),
        None => Sent::Retry("a completion without content".into(), None),
    }
}

impl Backend for OpenAi {
    fn name(&self) -> &'static str {
        "openai"
    }

    fn call<'a>(&'a self, request: &'a Request) -> Call<'a> {
        Box::pin(self.ask(request))
    }
}
