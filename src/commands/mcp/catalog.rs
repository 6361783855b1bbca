//! What the MCP server serves, with no protocol types: incidents from the job's incidents file
//! and fixes from the deployment store, read and filtered, and the operator's decisions on fixes.
//!
//! In: a tool's name and JSON arguments. Out: the tool's JSON answer, or a `ToolError` whose
//! message tells an agent what to send instead. State: the incidents file as last read (read
//! again when its size or modification time changes), and the deployment `Manager`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::Deserialize;
use serde_json::{Value, json};

use crate::core::record::Incident;
use crate::model::ModelConfig;
use crate::model::composer::FixAttempt;
use crate::model::deploy::manager::{Manager, Moved};
use crate::model::deploy::store::FixRecord;

/// The most incidents one `list_incidents` returns.
pub const MAX_LIMIT: usize = 500;
/// The largest string argument accepted (a diff, a reason, a filter).
pub const MAX_ARG_BYTES: usize = 256 * 1024;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ToolError {
    #[error("unknown tool `{0}`")]
    UnknownTool(String),
    #[error("bad arguments for `{tool}`: {why}")]
    Arguments { tool: String, why: String },
    #[error("argument `{name}` is {len} bytes; at most {MAX_ARG_BYTES} are accepted")]
    TooLarge { name: String, len: usize },
    #[error("no incident with fingerprint `{0}` (list_incidents shows the known ones)")]
    NoIncident(String),
    #[error("no fix `{0}` (list_fixes shows the known ones)")]
    NoFix(String),
    #[error("cannot read the incidents file {path}: {why}")]
    Incidents { path: String, why: String },
    #[error("no fix store: {0}")]
    NoStore(String),
    #[error("{0}")]
    Deploy(String),
    #[error("the fix did not validate: {0}")]
    NotValidated(String),
}

/// Incidents as last read: the newest line per fingerprint.
#[derive(Default)]
struct Snapshot {
    stamp: Option<(u64, std::time::SystemTime)>,
    by_fp: HashMap<String, Value>,
    /// Lines that were not an incident (counted, reported by `list_incidents`).
    unreadable: u64,
}

pub struct Catalog {
    incidents: PathBuf,
    snapshot: Mutex<Snapshot>,
    /// `Err(why)` when the spec has no deployment loop to read fixes from.
    manager: Result<Manager, String>,
    /// The spec's model stage (repository, sandbox, backend), for `propose_fix` and the
    /// `fix_incident` prompt; `None` when the spec has no deployment loop.
    model: Option<ModelConfig>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ListArgs {
    state: Option<String>,
    service: Option<String>,
    since: Option<String>,
    text: Option<String>,
    limit: Option<usize>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct FixFilter {
    status: Option<String>,
    fingerprint: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FingerprintArgs {
    fingerprint: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IdArgs {
    id: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DecideArgs {
    id: String,
    why: Option<String>,
}

/// Rejects string arguments past `MAX_ARG_BYTES`, before they are parsed.
fn check_sizes(args: &Value) -> Result<(), ToolError> {
    if let Value::Object(map) = args {
        for (name, v) in map {
            if let Value::String(s) = v
                && s.len() > MAX_ARG_BYTES
            {
                return Err(ToolError::TooLarge {
                    name: name.clone(),
                    len: s.len(),
                });
            }
        }
    }
    Ok(())
}

pub fn parse<T: serde::de::DeserializeOwned>(tool: &str, args: Value) -> Result<T, ToolError> {
    check_sizes(&args)?;
    let args = if args.is_null() { json!({}) } else { args };
    serde_json::from_value(args).map_err(|e| ToolError::Arguments {
        tool: tool.into(),
        why: e.to_string(),
    })
}

fn text_of(v: &Value, key: &str) -> String {
    v.get(key).and_then(Value::as_str).unwrap_or("").to_string()
}

/// Milliseconds of an RFC 3339 time, for comparing `since` with `last_seen`.
fn millis(text: &str) -> Option<i64> {
    crate::core::timestamp::parse_field(text, 1970)
}

impl Catalog {
    pub fn new(
        incidents: PathBuf,
        manager: Result<Manager, String>,
        model: Option<ModelConfig>,
    ) -> Catalog {
        Catalog {
            incidents,
            snapshot: Mutex::default(),
            manager,
            model,
        }
    }

    pub fn model(&self) -> Result<&ModelConfig, ToolError> {
        self.model
            .as_ref()
            .ok_or_else(|| ToolError::NoStore("the spec has no [model.repository]".into()))
    }

    /// Commits a validated attempt on its branch and stages it (the deployment loop's `ship`).
    pub fn ship(&self, attempt: &FixAttempt, incident: &Incident) -> Result<Moved, ToolError> {
        self.manager()?
            .ship(attempt, incident, crate::core::time::now_ms())
            .map_err(|e| ToolError::Deploy(e.to_string()))
    }

    pub fn incidents_path(&self) -> &Path {
        &self.incidents
    }

    /// The incidents, re-read if the file changed; a missing file is no incidents yet.
    fn incidents(&self) -> Result<(Vec<Value>, u64), ToolError> {
        let mut snap = self
            .snapshot
            .lock()
            .map_err(|_| ToolError::Deploy("the incidents cache is poisoned".into()))?;
        let stamp = std::fs::metadata(&self.incidents)
            .ok()
            .and_then(|m| Some((m.len(), m.modified().ok()?)));
        if stamp.is_none() {
            *snap = Snapshot::default();
        } else if snap.stamp != stamp {
            let text =
                std::fs::read_to_string(&self.incidents).map_err(|e| ToolError::Incidents {
                    path: self.incidents.display().to_string(),
                    why: e.to_string(),
                })?;
            let mut fresh = Snapshot {
                stamp,
                ..Snapshot::default()
            };
            for line in text.lines().filter(|l| !l.trim().is_empty()) {
                match serde_json::from_str::<Value>(line) {
                    Ok(v) if v.get("fingerprint").and_then(Value::as_str).is_some() => {
                        fresh.by_fp.insert(text_of(&v, "fingerprint"), v);
                    }
                    _ => fresh.unreadable += 1,
                }
            }
            *snap = fresh;
        }
        Ok((snap.by_fp.values().cloned().collect(), snap.unreadable))
    }

    pub fn incident(&self, fingerprint: &str) -> Result<Value, ToolError> {
        let (all, _) = self.incidents()?;
        all.into_iter()
            .find(|v| text_of(v, "fingerprint") == fingerprint)
            .ok_or_else(|| ToolError::NoIncident(fingerprint.into()))
    }

    fn manager(&self) -> Result<&Manager, ToolError> {
        self.manager
            .as_ref()
            .map_err(|why| ToolError::NoStore(why.clone()))
    }

    fn fixes(&self) -> Result<Vec<FixRecord>, ToolError> {
        let book = self
            .manager()?
            .store
            .load()
            .map_err(|e| ToolError::Deploy(e.to_string()))?;
        Ok(book.fixes)
    }

    /// Incidents newest first (by last seen), filtered; merged ones only when asked for.
    pub fn list_incidents(&self, args: Value) -> Result<Value, ToolError> {
        let a: ListArgs = parse("list_incidents", args)?;
        let limit = a.limit.unwrap_or(50).clamp(1, MAX_LIMIT);
        let since = match &a.since {
            Some(s) => Some(millis(s).ok_or_else(|| ToolError::Arguments {
                tool: "list_incidents".into(),
                why: format!("`since` must be an RFC 3339 time (2026-01-01T00:00:00Z), got `{s}`"),
            })?),
            None => None,
        };
        let text = a.text.as_deref().map(str::to_lowercase);
        let (mut all, unreadable) = self.incidents()?;
        all.retain(|v| {
            let state = text_of(v, "state");
            let wanted_state = match &a.state {
                Some(s) => &state == s,
                None => state != "merged",
            };
            let services = v.get("services").and_then(Value::as_array);
            let in_service = a.service.as_ref().is_none_or(|s| {
                &text_of(v, "service") == s
                    || services.is_some_and(|l| l.iter().any(|x| x.as_str() == Some(s)))
            });
            let recent =
                since.is_none_or(|t| millis(&text_of(v, "last_seen")).is_some_and(|l| l >= t));
            let matches = text.as_ref().is_none_or(|t| {
                text_of(v, "title").to_lowercase().contains(t)
                    || text_of(v, "template").to_lowercase().contains(t)
            });
            wanted_state && in_service && recent && matches
        });
        all.sort_by(|x, y| {
            let key = |v: &Value| (millis(&text_of(v, "last_seen")), text_of(v, "fingerprint"));
            key(y).cmp(&key(x))
        });
        let total = all.len();
        let rows: Vec<Value> = all
            .iter()
            .take(limit)
            .map(|v| {
                json!({
                    "fingerprint": v["fingerprint"], "title": v["title"], "state": v["state"],
                    "count": v["count"], "first_seen": v["first_seen"],
                    "last_seen": v["last_seen"], "services": v["services"],
                })
            })
            .collect();
        Ok(json!({ "incidents": rows, "matched": total, "unreadable_lines": unreadable }))
    }

    /// The whole incident line, with the fixes made for it.
    pub fn get_incident(&self, args: Value) -> Result<Value, ToolError> {
        let a: FingerprintArgs = parse("get_incident", args)?;
        self.incident_with_fixes(&a.fingerprint)
    }

    /// The incident `fingerprint`, with its fix history (empty without a fix store).
    pub fn incident_with_fixes(&self, fingerprint: &str) -> Result<Value, ToolError> {
        let mut v = self.incident(fingerprint)?;
        let fixes: Vec<Value> = self
            .fixes()
            .unwrap_or_default()
            .into_iter()
            .filter(|f| f.fingerprint == fingerprint)
            .map(|f| serde_json::to_value(f).unwrap_or(Value::Null))
            .collect();
        v["fixes"] = Value::Array(fixes);
        Ok(v)
    }

    /// Fixes, oldest first, filtered by status or incident.
    pub fn list_fixes(&self, args: Value) -> Result<Value, ToolError> {
        let a: FixFilter = parse("list_fixes", args)?;
        let rows: Vec<Value> = self
            .fixes()?
            .iter()
            .filter(|f| a.status.as_deref().is_none_or(|s| f.status.as_str() == s))
            .filter(|f| a.fingerprint.as_deref().is_none_or(|p| f.fingerprint == p))
            .map(|f| {
                json!({
                    "id": f.id, "status": f.status.as_str(), "fingerprint": f.fingerprint,
                    "title": f.title, "release": f.release,
                })
            })
            .collect();
        Ok(json!({ "fixes": rows }))
    }

    pub fn get_fix(&self, args: Value) -> Result<Value, ToolError> {
        let a: IdArgs = parse("get_fix", args)?;
        let fix = self
            .fixes()?
            .into_iter()
            .find(|f| f.id == a.id)
            .ok_or(ToolError::NoFix(a.id))?;
        serde_json::to_value(fix).map_err(|e| ToolError::Deploy(e.to_string()))
    }

    /// `approve_fix`, `reject_fix` or `rollback_fix`: the fix as it now stands, and the
    /// notices to send.
    pub fn decide(&self, tool: &str, args: Value) -> Result<Moved, ToolError> {
        let a: DecideArgs = parse(tool, args)?;
        let m = self.manager()?;
        if !self.fixes()?.iter().any(|f| f.id == a.id) {
            return Err(ToolError::NoFix(a.id));
        }
        let why = || {
            a.why
                .clone()
                .filter(|w| !w.trim().is_empty())
                .ok_or_else(|| ToolError::Arguments {
                    tool: tool.into(),
                    why: "`why` is required: say why, for the fix's history".into(),
                })
        };
        let moved = match tool {
            "approve_fix" => m.approve(&a.id),
            "reject_fix" => m.reject(&a.id, &why()?),
            "rollback_fix" => m.rollback(&a.id, &why()?),
            other => return Err(ToolError::UnknownTool(other.into())),
        };
        moved.map_err(|e| ToolError::Deploy(e.to_string()))
    }

    /// The `fix_incident` prompt: the incident's evidence, the repository files its fault
    /// touches, and how a fix is proven here.
    pub fn fix_prompt(&self, fingerprint: &str, allow_writes: bool) -> Result<String, ToolError> {
        let v = self.incident_with_fixes(fingerprint)?;
        let mut out = format!(
            "Fix incident {fingerprint} of the Hephaestus job.\n\n## The incident\n\n```json\n{}\n```\n",
            serde_json::to_string_pretty(&v).unwrap_or_default()
        );
        if let Some(project) = self.model.as_ref().map(|m| &m.repository) {
            out.push_str(&format!(
                "\n## The repository\n\n{} (unit tests: `{}`; integration: `{}`)\n",
                project.path.display(),
                project.test_command,
                if project.integration_command.is_empty() {
                    "none"
                } else {
                    &project.integration_command
                },
            ));
            if let Ok(incident) = serde_json::from_value::<crate::core::record::Incident>(v.clone())
            {
                let req = crate::model::composer::request(&incident, project);
                for f in &req.files {
                    out.push_str(&format!("\n### {}\n\n```\n{}\n```\n", f.path, f.content));
                }
            }
        }
        out.push_str(
            "\n## How a fix is proven\n\nA fix comes with a test that reproduces the incident: \
             the test fails before the fix with the incident's failure and passes after it, and \
             the unit and integration suites stay green, all in a sandbox with no network, on a \
             fresh worktree. A proven fix is staged, approved, deployed, and rolled back if the \
             error comes back.\n",
        );
        if allow_writes {
            out.push_str(
                "\nThis server may change fixes: approve_fix, reject_fix and rollback_fix act on the \
                 fixes list_fixes shows.\n",
            );
        }
        Ok(out)
    }
}
