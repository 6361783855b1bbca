//! Parse configuration: the `[parse]` section of a job spec and the per-source format choice.
//!
//! In: TOML. Out: validated settings (`ParseConfig`) and the compiled format of a source
//! (`FormatChoice`). No state.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::HeaderFormat;

/// `[parse]`: limits and defaults shared by every source.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ParseConfig {
    /// Longest line accepted, in bytes; longer lines go to the dead-letter output
    /// (`line_too_long`) with their length, and are never held in memory whole.
    pub max_line_bytes: usize,
    /// Year for timestamps that carry none (BSD syslog `Mar  1 12:00:00`). Defaults to the
    /// current UTC year when the plan is built; set it when replaying old logs.
    pub default_year: Option<i32>,
}

impl Default for ParseConfig {
    fn default() -> Self {
        ParseConfig {
            max_line_bytes: 1 << 20,
            default_year: None,
        }
    }
}

/// A named line format, for sources whose format is known.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum SourceFormat {
    /// Detect per line among all the formats below.
    #[default]
    Auto,
    /// One JSON object per line.
    Json,
    /// `key=value key2="quoted value"`.
    Logfmt,
    /// RFC 3164 or RFC 5424.
    Syslog,
    /// Apache/nginx common or combined access log.
    Access,
    /// `timestamp level [thread] logger: message`.
    Generic,
    /// No header: the whole line is the message.
    Plain,
}

/// The compiled format of one source.
#[derive(Clone, Debug)]
pub enum FormatChoice {
    Auto,
    Fixed(SourceFormat),
    /// A Loghub-style header template such as `<Date> <Time> <Level> <Component>: <Content>`.
    Header(Arc<HeaderFormat>),
}

impl FormatChoice {
    pub fn new(format: SourceFormat, header: Option<&str>) -> Result<FormatChoice, String> {
        match (format, header) {
            (SourceFormat::Auto, None) => Ok(FormatChoice::Auto),
            (SourceFormat::Auto, Some(h)) => {
                Ok(FormatChoice::Header(Arc::new(HeaderFormat::new(h)?)))
            }
            (f, None) => Ok(FormatChoice::Fixed(f)),
            (_, Some(_)) => Err(
                "`header` and `format` exclude each other: a header template is the format".into(),
            ),
        }
    }
}
