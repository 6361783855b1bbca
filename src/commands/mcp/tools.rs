//! The MCP server's tools as an agent sees them: name, one paragraph of what it does and when to
//! use it, and the JSON schema of its arguments.
//!
//! In: whether writes are allowed. Out: the tool list (tools that change state only with
//! `--allow-writes`). No state.

use serde_json::{Value, json};

pub struct ToolDef {
    pub name: &'static str,
    pub description: &'static str,
    /// Changes state (fixes): listed and callable only with `--allow-writes`.
    pub writes: bool,
    pub schema: fn() -> Value,
}

fn object(properties: Value, required: &[&str]) -> Value {
    json!({
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": false,
    })
}

fn list_incidents() -> Value {
    object(
        json!({
            "state": {"type": "string", "enum": ["new", "ongoing", "escalating", "resolved", "regressed", "merged"],
                      "description": "only incidents in this state (default: all but merged)"},
            "service": {"type": "string", "description": "only incidents this service reported"},
            "since": {"type": "string", "description": "only incidents last seen at or after this RFC 3339 time"},
            "text": {"type": "string", "description": "case-insensitive substring of the title or template"},
            "limit": {"type": "integer", "minimum": 1, "maximum": super::catalog::MAX_LIMIT, "description": "most incidents returned (default 50)"},
        }),
        &[],
    )
}

fn fingerprint() -> Value {
    object(
        json!({"fingerprint": {"type": "string", "description": "the incident's fingerprint (16 hex digits, from list_incidents)"}}),
        &["fingerprint"],
    )
}

fn list_fixes() -> Value {
    object(
        json!({
            "status": {"type": "string", "description": "only fixes in this status (proposed, staging_failed, awaiting_approval, rejected, production, rolled_back, successful)"},
            "fingerprint": {"type": "string", "description": "only fixes of this incident"},
        }),
        &[],
    )
}

fn id() -> Value {
    object(
        json!({"id": {"type": "string", "description": "the fix id (`fix-<n>`, from list_fixes)"}}),
        &["id"],
    )
}

fn decide(why_required: bool) -> Value {
    let required: &[&str] = if why_required {
        &["id", "why"]
    } else {
        &["id"]
    };
    object(
        json!({
            "id": {"type": "string", "description": "the fix id (`fix-<n>`)"},
            "why": {"type": "string", "description": "the reason, kept in the fix's history"},
        }),
        required,
    )
}

fn propose() -> Value {
    object(
        json!({
            "fingerprint": {"type": "string", "description": "the incident the fix is for"},
            "diff": {"type": "string", "description": "the fix as a unified diff against the repository (`--- a/PATH` / `+++ b/PATH` headers, as `git diff` writes them); no test files"},
            "explanation": {"type": "string", "description": "what the fix changes and why, for the commit message"},
            "test": {
                "type": "object",
                "description": "the reproducing test (default: the spec's model backend writes one)",
                "properties": {
                    "diff": {"type": "string", "description": "a unified diff that adds the test"},
                    "command": {"type": "string", "description": "runs only that test; it must fail before the fix and pass after it"},
                },
                "required": ["diff", "command"],
                "additionalProperties": false,
            },
        }),
        &["fingerprint", "diff"],
    )
}

pub const TOOLS: &[ToolDef] = &[
    ToolDef {
        name: "list_incidents",
        description: "List the job's de-duplicated error incidents, most recently seen first: fingerprint, title, state (new, ongoing, escalating, resolved, regressed), event count, first and last seen, and the services that reported it. Filter by state, service, a time (`since`) or text in the title; use get_incident with a fingerprint for the samples, trace and template.",
        writes: false,
        schema: list_incidents,
    },
    ToolDef {
        name: "get_incident",
        description: "Everything known about one incident: its incident line as the job wrote it (template, sample messages, exemplar stack trace, counts per window and per release, services, hosts, detection reasons) and the history of every fix made for it. Start here before proposing a fix.",
        writes: false,
        schema: fingerprint,
    },
    ToolDef {
        name: "list_fixes",
        description: "List the fixes in the deployment loop, oldest first: id, status (proposed, staging_failed, awaiting_approval, rejected, production, rolled_back, successful), the incident fingerprint it fixes, its title and the release that shipped it.",
        writes: false,
        schema: list_fixes,
    },
    ToolDef {
        name: "get_fix",
        description: "One fix in full: its status, the diff the validator proved, its branch and commits, the release and time it reached production, why it was rolled back, and its history (validation, staging, approval, deployment, rollback).",
        writes: false,
        schema: id,
    },
    ToolDef {
        name: "propose_fix",
        description: "Hand in a fix for an incident as a unified diff. It is proven exactly like a model's fix, on a fresh git worktree in a sandbox without network: the reproducing test (yours in `test`, or one the spec's model backend writes) must fail before the fix with the incident's failure and pass after it, and the unit and integration suites must pass. A fix that passes gets an id and enters the deployment loop (staged, then approved and deployed, rolled back if the error returns); one that fails comes back with the step that failed and why.",
        writes: true,
        schema: propose,
    },
    ToolDef {
        name: "approve_fix",
        description: "Approve a fix that is awaiting approval on staging: it is deployed to production as a new release. The deployment loop then watches the incident and rolls the fix back if the error comes back.",
        writes: true,
        schema: || decide(false),
    },
    ToolDef {
        name: "reject_fix",
        description: "Reject a fix that has not reached production; `why` is kept in its history and told to the model on its next attempt at the incident.",
        writes: true,
        schema: || decide(true),
    },
    ToolDef {
        name: "rollback_fix",
        description: "Roll a deployed fix back out of production (a new release without it); `why` is kept in its history. Use when the fix causes harm the error count does not show.",
        writes: true,
        schema: || decide(true),
    },
];

/// The tools a server with (or without) writes offers.
pub fn offered(allow_writes: bool) -> impl Iterator<Item = &'static ToolDef> {
    TOOLS.iter().filter(move |t| allow_writes || !t.writes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_tools_exist_only_with_writes() {
        let read: Vec<&str> = offered(false).map(|t| t.name).collect();
        assert_eq!(
            read,
            ["list_incidents", "get_incident", "list_fixes", "get_fix"]
        );
        assert_eq!(offered(true).count(), TOOLS.len());
        assert_eq!(TOOLS.iter().filter(|t| t.writes).count(), 4);
        for t in TOOLS {
            let schema = (t.schema)();
            assert_eq!(schema["type"], "object", "{}", t.name);
            for r in schema["required"].as_array().into_iter().flatten() {
                let name = r.as_str().unwrap_or_default();
                assert!(
                    schema["properties"].get(name).is_some(),
                    "{}: {name}",
                    t.name
                );
            }
        }
    }
}
