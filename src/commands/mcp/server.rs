//! The MCP protocol face of the catalog (rmcp `ServerHandler`): tools, incidents as resources,
//! and the `fix_incident` prompt.
//!
//! In: MCP requests from one agent session. Out: tool results (a tool that fails answers an
//! error result with the reason, and the server keeps serving), resources, prompts; each call
//! counted and timed in `hephaestus_mcp_requests_total` / `hephaestus_mcp_request_seconds`.
//! State: the shared `Catalog` and whether writes are allowed.

use std::sync::Arc;
use std::time::Instant;

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, GetPromptRequestParams,
    GetPromptResponse, GetPromptResult, Implementation, ListPromptsResult,
    ListResourceTemplatesResult, ListResourcesResult, ListToolsResult, PaginatedRequestParams,
    Prompt, PromptArgument, PromptMessage, ReadResourceRequestParams, ReadResourceResponse,
    ReadResourceResult, Resource, ResourceContents, ResourceTemplate, Role, ServerCapabilities,
    ServerConfig, Tool,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler};
use serde_json::{Value, json};

use super::catalog::{Catalog, ToolError};
use super::tools::{TOOLS, offered};
use crate::model::deploy::notify::Notifier;

const URI_PREFIX: &str = "hephaestus://incident/";

#[derive(Clone)]
pub struct Server {
    pub catalog: Arc<Catalog>,
    pub notifier: Arc<Notifier>,
    pub allow_writes: bool,
}

fn tool(def: &super::tools::ToolDef) -> Tool {
    let schema = match (def.schema)() {
        Value::Object(m) => m,
        _ => serde_json::Map::new(),
    };
    Tool::new(def.name, def.description, schema)
}

impl Server {
    /// Sends what a fix's move tells the operators (as `hephaestus fixes` does).
    async fn notify(&self, moved: &crate::model::deploy::manager::Moved) {
        for n in &moved.notices {
            if let Err(e) = self.notifier.send(n).await {
                eprintln!("hephaestus: notify: {e}");
            }
        }
    }

    /// Runs tool `name`; the answer as JSON or why it failed.
    async fn run(&self, name: &str, args: Value) -> Result<Value, ToolError> {
        let def = TOOLS
            .iter()
            .find(|t| t.name == name && (self.allow_writes || !t.writes))
            .ok_or_else(|| ToolError::UnknownTool(name.into()))?;
        let c = &self.catalog;
        match def.name {
            "list_incidents" => c.list_incidents(args),
            "get_incident" => c.get_incident(args),
            "list_fixes" => c.list_fixes(args),
            "get_fix" => c.get_fix(args),
            "propose_fix" => {
                let (answer, moved) = super::propose::propose(&self.catalog, args).await?;
                self.notify(&moved).await;
                Ok(answer)
            }
            decide => {
                let catalog = self.catalog.clone();
                let tool = decide.to_string();
                let moved = tokio::task::spawn_blocking(move || catalog.decide(&tool, args))
                    .await
                    .map_err(|e| {
                        ToolError::Deploy(format!("the decision did not finish: {e}"))
                    })??;
                self.notify(&moved).await;
                serde_json::to_value(&moved.fix).map_err(|e| ToolError::Deploy(e.to_string()))
            }
        }
    }
}

impl ServerHandler for Server {
    fn get_info(&self) -> ServerConfig {
        let caps = ServerCapabilities::builder()
            .enable_tools()
            .enable_resources()
            .enable_prompts()
            .build();
        ServerConfig::new(caps)
            .with_server_info(Implementation::new("hephaestus", env!("CARGO_PKG_VERSION")))
            .with_instructions(
                "Hephaestus turns a job's logs into de-duplicated error incidents and proves fixes \
                 for them in a sandbox before a staged deployment. Read incidents with \
                 list_incidents and get_incident; fixes with list_fixes and get_fix.",
            )
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(
            offered(self.allow_writes).map(tool).collect(),
        ))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let started = Instant::now();
        let args = request.arguments.map_or(Value::Null, Value::Object);
        let answer = self.run(&request.name, args).await;
        let outcome = match &answer {
            Ok(_) => "ok",
            Err(ToolError::UnknownTool(_)) => "unknown_tool",
            Err(ToolError::Arguments { .. } | ToolError::TooLarge { .. }) => "bad_request",
            Err(ToolError::NoIncident(_) | ToolError::NoFix(_)) => "not_found",
            Err(ToolError::NotValidated(_)) => "not_validated",
            Err(_) => "error",
        };
        let name = if outcome == "unknown_tool" {
            "unknown"
        } else {
            &request.name
        };
        crate::metrics::mcp_request(name, outcome, started.elapsed().as_secs_f64());
        Ok(match answer {
            Ok(v) => CallToolResult::structured(v),
            Err(e) => CallToolResult::error(vec![ContentBlock::text(e.to_string())]),
        }
        .into())
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        let listed = self
            .catalog
            .list_incidents(json!({"limit": super::catalog::MAX_LIMIT}))
            .map_err(|e| ErrorData::internal_error(e.to_string(), None))?;
        let rows = listed["incidents"].as_array().cloned().unwrap_or_default();
        let resources = rows
            .iter()
            .map(|v| {
                let fp = v["fingerprint"].as_str().unwrap_or_default();
                Resource::new(format!("{URI_PREFIX}{fp}"), fp)
                    .with_title(v["title"].as_str().unwrap_or_default())
                    .with_mime_type("application/json")
            })
            .collect();
        Ok(ListResourcesResult::with_all_items(resources))
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, ErrorData> {
        let t = ResourceTemplate::new(format!("{URI_PREFIX}{{fingerprint}}"), "incident")
            .with_description("One incident, as get_incident returns it.")
            .with_mime_type("application/json");
        Ok(ListResourceTemplatesResult::with_all_items(vec![t]))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        let Some(fp) = request.uri.strip_prefix(URI_PREFIX) else {
            return Err(ErrorData::resource_not_found(
                format!(
                    "no resource `{}`: incidents are {URI_PREFIX}<fingerprint>",
                    request.uri
                ),
                None,
            ));
        };
        let v = self
            .catalog
            .incident_with_fixes(fp)
            .map_err(|e| ErrorData::resource_not_found(e.to_string(), None))?;
        let text = serde_json::to_string_pretty(&v).unwrap_or_default();
        let contents = ResourceContents::text(text, request.uri).with_mime_type("application/json");
        Ok(ReadResourceResult::new(vec![contents]).into())
    }

    async fn list_prompts(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, ErrorData> {
        let arg = PromptArgument::new("fingerprint")
            .with_description("the incident to fix")
            .with_required(true);
        let p = Prompt::new(
            "fix_incident",
            Some(
                "Start fixing one incident: its evidence, the repository and how fixes are proven.",
            ),
            Some(vec![arg]),
        );
        Ok(ListPromptsResult::with_all_items(vec![p]))
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, ErrorData> {
        if request.name != "fix_incident" {
            return Err(ErrorData::invalid_params(
                format!(
                    "no prompt `{}`; the one prompt is fix_incident",
                    request.name
                ),
                None,
            ));
        }
        let fp = request
            .arguments
            .as_ref()
            .and_then(|a| a.get("fingerprint"))
            .and_then(Value::as_str)
            .ok_or_else(|| ErrorData::invalid_params("fix_incident needs `fingerprint`", None))?;
        let text = self
            .catalog
            .fix_prompt(fp, self.allow_writes)
            .map_err(|e| ErrorData::invalid_params(e.to_string(), None))?;
        let mut result = GetPromptResult::new(vec![PromptMessage::new_text(Role::User, text)]);
        result.description = Some(format!("Fix incident {fp}"));
        Ok(result.into())
    }
}
