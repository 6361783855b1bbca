//! The `openai` backend against a local server that speaks the chat-completions protocol (the
//! one test double in the suite: a hosted model cannot run offline). Each test scripts the
//! server's replies and counts the requests it got.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hephaestus::model::openai::{OpenAi, OpenAiConfig};
use hephaestus::model::protocol::{Answer, Backend, BackendError, Request, Role};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// One scripted reply: status, extra headers, body.
pub type Reply = (u16, Vec<(&'static str, String)>, String);

#[derive(Clone, Default)]
pub struct Server {
    replies: Arc<Mutex<Vec<Reply>>>,
    /// Replies by role (the system prompt's `Role: …` line), before the script.
    by_role: Arc<Vec<(&'static str, Reply)>>,
    /// Request bodies, in arrival order.
    seen: Arc<Mutex<Vec<serde_json::Value>>>,
}

pub fn completion(content: &str, prompt: u64, completion: u64) -> Reply {
    let body = serde_json::json!({
        "id": "c1", "object": "chat.completion", "model": "m",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}
    });
    (200, vec![], body.to_string())
}

const FIX: &str = r#"{"edits": [{"path": "calc.py", "search": "return sum(values) / len(values)", "replace": "return sum(values) / len(values) if values else 0.0"}], "explanation": "guard"}"#;

impl Server {
    /// Serves on a loopback port; the last reply repeats once the script runs out.
    async fn start(replies: Vec<Reply>) -> (Server, String) {
        Server::serve(Server {
            replies: Arc::new(Mutex::new(replies)),
            ..Server::default()
        })
        .await
    }

    /// Answers each role (`"logic analyzer"`, `"code fixer"`, …) with its reply.
    pub async fn roles(by_role: Vec<(&'static str, Reply)>) -> (Server, String) {
        Server::serve(Server {
            replies: Arc::new(Mutex::new(vec![(
                500,
                vec![],
                "no reply for this role".into(),
            )])),
            by_role: Arc::new(by_role),
            ..Server::default()
        })
        .await
    }

    async fn serve(server: Server) -> (Server, String) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}/v1", listener.local_addr().expect("addr"));
        let s = server.clone();
        tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                let s = s.clone();
                tokio::spawn(async move {
                    let Some(body) = read_request(&mut conn).await else {
                        return;
                    };
                    let request: serde_json::Value =
                        serde_json::from_slice(&body).unwrap_or_default();
                    let system = request["messages"][0]["content"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string();
                    s.seen.lock().expect("seen").push(request);
                    let scripted = s
                        .by_role
                        .iter()
                        .find(|(role, _)| system.contains(&format!("Role: {role}.")))
                        .map(|(_, reply)| reply.clone());
                    let (status, headers, body) = if let Some(reply) = scripted {
                        reply
                    } else {
                        let mut r = s.replies.lock().expect("replies");
                        if r.len() > 1 {
                            r.remove(0)
                        } else {
                            r[0].clone()
                        }
                    };
                    if status == 0 {
                        // A server that takes the request and never answers.
                        tokio::time::sleep(Duration::from_secs(3600)).await;
                    }
                    let mut head = format!(
                        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n",
                        body.len()
                    );
                    for (k, v) in headers {
                        head.push_str(&format!("{k}: {v}\r\n"));
                    }
                    let _ = conn.write_all(format!("{head}\r\n{body}").as_bytes()).await;
                });
            }
        });
        (server, url)
    }

    pub fn requests(&self) -> usize {
        self.seen.lock().map(|s| s.len()).unwrap_or(0)
    }
}

async fn read_request(conn: &mut tokio::net::TcpStream) -> Option<Vec<u8>> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        let n = conn.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(body) = super::common::http_body(&buf) {
            return Some(body);
        }
    }
}

fn backend(url: &str, tweak: impl FnOnce(&mut OpenAiConfig)) -> OpenAi {
    let mut c = OpenAiConfig {
        base_url: url.into(),
        model: "local-coder".into(),
        api_key_env: "HEPHAESTUS_TEST_NO_KEY".into(),
        usd_per_mtok_prompt: 2.0,
        usd_per_mtok_completion: 8.0,
        timeout: hephaestus::core::time::Duration(5_000),
        backoff: hephaestus::core::time::Duration(10),
        max_retries: 3,
        ..OpenAiConfig::default()
    };
    tweak(&mut c);
    OpenAi::new(&c).expect("backend")
}

fn request() -> Request {
    let trace = "Traceback (most recent call last):\n  File \"/srv/calc.py\", line 2, in average\n    return sum(values) / len(values)\nZeroDivisionError: division by zero";
    let incident = hephaestus::core::record::Incident {
        fingerprint: "f1".into(),
        exemplar_trace: Some(trace.into()),
        ..Default::default()
    };
    let mut r = hephaestus::model::composer::request(&incident, &Default::default());
    r.role = Role::CodeFixer;
    r
}

#[tokio::test]
async fn usage_is_priced() {
    let (server, url) = Server::start(vec![completion(FIX, 1000, 500)]).await;
    let r = backend(&url, |_| {})
        .call(&request())
        .await
        .expect("answer");
    assert!(
        matches!(&r.answer, Answer::Fix(f) if f.edits.len() == 1),
        "{r:?}"
    );
    assert_eq!(
        (r.usage.prompt_tokens, r.usage.completion_tokens),
        (1000, 500)
    );
    assert!(
        (r.usage.cost_usd - 0.006).abs() < 1e-12,
        "{}",
        r.usage.cost_usd
    );
    let sent = &server.seen.lock().expect("seen")[0];
    assert_eq!(sent["model"], "local-coder");
    assert_eq!(sent["response_format"]["type"], "json_object");
    assert!(
        sent["messages"][0]["content"]
            .as_str()
            .is_some_and(|s| s.contains("code fixer"))
    );
}

#[tokio::test]
async fn rate_limits_wait_for_retry_after() {
    let limited = (
        429,
        vec![("retry-after", "1".to_string())],
        r#"{"error": {"type": "rate_limit_exceeded"}}"#.to_string(),
    );
    let (server, url) = Server::start(vec![limited, completion(FIX, 10, 10)]).await;
    let started = Instant::now();
    let r = backend(&url, |_| {}).call(&request()).await;
    assert!(r.is_ok(), "{r:?}");
    assert_eq!(server.requests(), 2);
    // The backoff is 10 ms; only Retry-After explains waiting a second.
    assert!(
        started.elapsed() >= Duration::from_millis(950),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn server_errors_are_retried_then_given_up() {
    let (server, url) = Server::start(vec![(503, vec![], "busy".into())]).await;
    let r = backend(&url, |c| c.max_retries = 2).call(&request()).await;
    assert!(matches!(r, Err(BackendError::Unavailable(_))), "{r:?}");
    assert_eq!(server.requests(), 3, "one try and two retries");
}

#[tokio::test]
async fn quota_errors_are_not_retried() {
    let quota = (429, vec![], r#"{"error": {"code": "insufficient_quota", "message": "You exceeded your current quota"}}"#.to_string());
    let (server, url) = Server::start(vec![quota, completion(FIX, 1, 1)]).await;
    let b = backend(&url, |_| {});
    let r = b.call(&request()).await;
    assert!(matches!(r, Err(BackendError::Quota(_))), "{r:?}");
    assert_eq!(server.requests(), 1);
    // And the circuit opens: the next call does not reach the server either.
    assert!(b.call(&request()).await.is_err());
    assert_eq!(server.requests(), 1);
}

#[tokio::test]
async fn malformed_answers_are_re_asked_once() {
    let (server, url) = Server::start(vec![
        completion("Sure! Change line 2.", 5, 5),
        completion(FIX, 7, 7),
    ])
    .await;
    let r = backend(&url, |_| {})
        .call(&request())
        .await
        .expect("second answer");
    assert!(matches!(r.answer, Answer::Fix(_)));
    assert_eq!(
        (server.requests(), r.usage.prompt_tokens),
        (2, 12),
        "both calls are paid for"
    );
    let again = server.seen.lock().expect("seen")[1]["messages"].clone();
    let last = again
        .as_array()
        .and_then(|m| m.last())
        .and_then(|m| m["content"].as_str())
        .unwrap_or_default();
    assert!(
        last.contains("not the JSON the code_fixer must answer"),
        "{last}"
    );

    let (server, url) = Server::start(vec![completion("no", 1, 1)]).await;
    let r = backend(&url, |_| {}).call(&request()).await;
    assert!(matches!(r, Err(BackendError::Invalid(_))), "{r:?}");
    assert_eq!(server.requests(), 2, "re-asked once, not more");
}

#[tokio::test]
async fn repeated_failures_open_the_circuit() {
    let (server, url) = Server::start(vec![(500, vec![], "boom".into())]).await;
    let b = backend(&url, |c| {
        c.max_retries = 0;
        c.breaker_failures = 2;
    });
    for _ in 0..2 {
        assert!(matches!(
            b.call(&request()).await,
            Err(BackendError::Unavailable(_))
        ));
    }
    let r = b.call(&request()).await;
    assert!(
        matches!(&r, Err(BackendError::Unavailable(m)) if m.contains("circuit open")),
        "{r:?}"
    );
    assert_eq!(server.requests(), 2);
}

/// A whole job whose model stage talks to `replies` (`settings`: extra `[model.openai]` keys):
/// the incident is validated (by the openai backend or, when it fails, the builtin one) and
/// written as a reliability row. Returns the backends of the first attempt's steps and the
/// requests the server saw.
async fn whole_job(
    replies: Vec<Reply>,
    settings: &str,
    fault: &str,
    injected: &str,
) -> (Vec<String>, usize) {
    let (server, url) = Server::start(replies).await;
    let root = super::model::scratch(&fault.replace(' ', "_"));
    let (repo, log) = super::model::python_project(&root);
    let model = format!(
        "backend = \"openai\"\n\n[model.openai]\nbase_url = \"{url}\"\nmodel = \"m\"\n{settings}\n\n\
         [model.repository]\npath = {:?}\ntest_command = \"python3 -m unittest -q test_calc\"\n",
        repo.display().to_string()
    );
    let (summary, attempts) =
        tokio::task::spawn_blocking(move || super::model::run_job(&root, &log, &model))
            .await
            .expect("job");
    let m = summary.model.expect("model summary");
    assert_eq!(m.validated, 1, "{m:?}\n{attempts:#?}");
    crate::common::model_reliability(fault, injected, &m);
    let backends = attempts[0]["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .filter_map(|s| s["backend"].as_str().map(str::to_string))
        .collect();
    (backends, server.requests())
}

fn falls_back(backends: &[String]) -> bool {
    backends
        .windows(2)
        .any(|w| w[0] == "openai" && w[1] == "builtin")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_server_falls_back_to_builtin() {
    let (backends, requests) = whole_job(
        vec![(500, vec![], "down".into())],
        "max_retries = 0",
        "model server answering only HTTP 500 (incidents)",
        "every chat-completions call fails; the builtin backend answers instead",
    )
    .await;
    assert!(requests >= 1);
    assert!(falls_back(&backends), "{backends:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_answering_garbage_falls_back_to_builtin() {
    let (backends, requests) = whole_job(
        vec![completion("Sure! Here is what I think about your code.", 10, 10)],
        "max_retries = 0",
        "model server answering garbage (incidents)",
        "every reply is prose, not the JSON asked for (re-asked once); the builtin backend answers instead",
    )
    .await;
    assert!(requests >= 2, "re-asked once");
    assert!(falls_back(&backends), "{backends:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_that_never_answers_falls_back_to_builtin() {
    let (backends, requests) = whole_job(
        vec![(0, vec![], String::new())],
        "max_retries = 0\ntimeout = \"300ms\"",
        "model server timing out (incidents)",
        "the server takes every request and never answers; cut at 300 ms, the builtin backend answers",
    )
    .await;
    assert!(requests >= 1);
    assert!(falls_back(&backends), "{backends:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rate_limited_server_is_waited_out_in_a_whole_job() {
    let (_, requests) = whole_job(
        vec![
            (429, vec![("retry-after", "1".into())], String::new()),
            (500, vec![], "down".into()),
        ],
        "max_retries = 1",
        "model server answering 429 (incidents)",
        "the first call gets 429 with Retry-After: 1 and is retried after it",
    )
    .await;
    assert!(requests >= 2, "the 429 was retried");
}

#[tokio::test]
async fn a_server_that_never_answers_times_out_and_is_retried() {
    let (server, url) = Server::start(vec![(0, vec![], String::new())]).await;
    let b = backend(&url, |c| {
        c.timeout = hephaestus::core::time::Duration(200);
        c.max_retries = 1;
    });
    let r = b.call(&request()).await;
    assert!(
        matches!(&r, Err(BackendError::Unavailable(m)) if m.contains("1 retries")),
        "{r:?}"
    );
    assert_eq!(
        server.requests(),
        2,
        "one try and one retry, each cut at the timeout"
    );
}
