//! What the composer asks a model backend, and what comes back: the same JSON for every backend
//! (`builtin`, `openai`, `command`), so a user's own agent speaks it too.
//!
//! In: a `Request` for one role (the incident, its fault, the repository files it touches, the
//! analysis and fix so far, the validator's feedback from earlier attempts). Out: a `Response`:
//! the role's structured answer and what it cost. No state.

use std::future::Future;
use std::pin::Pin;

use serde::{Deserialize, Serialize};

use super::edits::Edit;
use crate::trace::fault::Fault;

/// The model pool's five roles.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    SyntaxAnalyzer,
    LogicAnalyzer,
    CodeFixer,
    TestGenerator,
    DocGenerator,
}

impl Role {
    pub const ALL: [Role; 5] = [
        Role::SyntaxAnalyzer,
        Role::LogicAnalyzer,
        Role::CodeFixer,
        Role::TestGenerator,
        Role::DocGenerator,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::SyntaxAnalyzer => "syntax_analyzer",
            Role::LogicAnalyzer => "logic_analyzer",
            Role::CodeFixer => "code_fixer",
            Role::TestGenerator => "test_generator",
            Role::DocGenerator => "doc_generator",
        }
    }
}

/// What kind of error an incident is; infrastructure errors are never patched.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ErrorKind {
    Syntax,
    Logic,
    Infrastructure,
}

/// A repository file the fault touches, as the backend sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceFile {
    /// Relative to the repository root.
    pub path: String,
    pub content: String,
}

/// The incident as the backend sees it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IncidentBrief {
    pub fingerprint: String,
    pub title: String,
    pub template: String,
    pub count: u64,
    pub samples: Vec<String>,
    pub exemplar_trace: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Analysis {
    pub kind: ErrorKind,
    pub summary: String,
    /// The fault's location in the repository, when known.
    pub path: Option<String>,
    pub line: Option<u32>,
    /// For template fixes: which one applies (`division_by_zero`, `missing_key`, …).
    pub pattern: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FixProposal {
    pub edits: Vec<Edit>,
    pub explanation: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TestKind {
    Unit,
    Integration,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TestProposal {
    pub kind: TestKind,
    /// New test files (or edits to test files).
    pub edits: Vec<Edit>,
    /// Runs only the reproducing test: it must fail before the fix and pass after it.
    pub command: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub markdown: String,
}

/// A role's answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum Answer {
    Analysis(Analysis),
    Fix(FixProposal),
    Tests(TestProposal),
    Report(Report),
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Request {
    pub role: Role,
    pub incident: IncidentBrief,
    pub fault: Option<Fault>,
    pub language: String,
    /// Repository files the fault touches, with their content.
    pub files: Vec<SourceFile>,
    /// The project's test command (what "the suite is green" means).
    pub test_command: String,
    pub analysis: Option<Analysis>,
    pub fix: Option<FixProposal>,
    /// What the validator said about earlier attempts, oldest first.
    pub feedback: Vec<String>,
    /// 1 for the first attempt.
    pub attempt: u32,
}

/// Tokens and money a call used.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Usage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub cost_usd: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Response {
    pub answer: Answer,
    #[serde(default)]
    pub usage: Usage,
}

#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// This backend cannot answer this request (the builtin one knows no template for it).
    #[error("cannot answer: {0}")]
    Unsupported(String),
    /// Out of quota or budget: do not retry.
    #[error("quota: {0}")]
    Quota(String),
    /// Worth retrying later (rate limited, server error, timeout) after exhausting retries.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// The backend answered something that is not a valid answer for the role.
    #[error("invalid answer: {0}")]
    Invalid(String),
}

pub type Call<'a> = Pin<Box<dyn Future<Output = Result<Response, BackendError>> + Send + 'a>>;

/// A model backend: answers one role's request.
pub trait Backend: Send + Sync {
    fn name(&self) -> &'static str;
    fn call<'a>(&'a self, request: &'a Request) -> Call<'a>;
}

impl Response {
    /// Checks that the answer is the kind `role` must give.
    pub fn for_role(self, role: Role) -> Result<Response, BackendError> {
        let ok = matches!(
            (role, &self.answer),
            (
                Role::SyntaxAnalyzer | Role::LogicAnalyzer,
                Answer::Analysis(_)
            ) | (Role::CodeFixer, Answer::Fix(_))
                | (Role::TestGenerator, Answer::Tests(_))
                | (Role::DocGenerator, Answer::Report(_))
        );
        if ok {
            Ok(self)
        } else {
            Err(BackendError::Invalid(format!(
                "{} answered {:?}",
                role.as_str(),
                self.answer
            )))
        }
    }
}
