//! JSON lines: one object per line (Bunyan, pino, logrus, zap, ECS, structlog…).
//!
//! In: a line starting with `{`. Out: the record's timestamp, level, message, service, host and
//! trace taken from the usual key names (nested objects are looked up by dotted path, so ECS's
//! `log.level` and `error.stack_trace` work); every other scalar becomes a field. A line that is
//! not a complete JSON object is rejected as `invalid_json`. No state.

use serde_json::{Map, Value};

use super::Reject;
use crate::core::record::{DeadReason, Format, Level, LogRecord};
use crate::core::timestamp;

const TS: &[&str] = &[
    "@timestamp",
    "timestamp",
    "time",
    "ts",
    "t",
    "datetime",
    "date",
    "asctime",
    "eventTime",
];
const LEVEL: &[&str] = &[
    "level",
    "log.level",
    "severity",
    "lvl",
    "levelname",
    "loglevel",
    "@level",
    "log_level",
];
const MESSAGE: &[&str] = &["message", "msg", "@message", "event", "text", "log", "body"];
const SERVICE: &[&str] = &[
    "service",
    "service.name",
    "app",
    "application",
    "logger",
    "logger_name",
    "log.logger",
    "component",
    "name",
];
const HOST: &[&str] = &["host", "hostname", "host.name", "host.hostname", "node"];
const TRACE: &[&str] = &[
    "stack",
    "stack_trace",
    "stacktrace",
    "traceback",
    "exc_info",
    "exception",
    "backtrace",
    "error.stack",
    "error.stack_trace",
    "err.stack",
    "exception.stacktrace",
];

pub(crate) fn parse(line: &str, rec: &mut LogRecord, year: i32) -> Result<(), Reject> {
    let map: Map<String, Value> = serde_json::from_str(line).map_err(|e| {
        let what = if e.is_eof() {
            "truncated JSON"
        } else {
            "invalid JSON"
        };
        (DeadReason::InvalidJson, format!("{what}: {e}"))
    })?;
    let mut flat: Vec<(String, &Value)> = Vec::with_capacity(map.len());
    flatten("", &map, 0, &mut flat);
    let mut used = vec![false; flat.len()];
    let mut take = |names: &[&str]| -> Option<&Value> {
        names.iter().find_map(|n| {
            let i = flat.iter().position(|(k, v)| k == n && !v.is_null())?;
            used[i] = true;
            Some(flat[i].1)
        })
    };
    rec.ts = take(TS).and_then(|v| match v {
        Value::String(s) => timestamp::parse_field(s, year),
        Value::Number(n) => n
            .as_f64()
            .and_then(|f| timestamp::parse_epoch(&f.to_string())),
        _ => None,
    });
    rec.level = take(LEVEL).map_or(Level::Unknown, json_level);
    rec.message = take(MESSAGE).map(scalar).unwrap_or_default();
    rec.service = take(SERVICE).map(scalar);
    rec.host = take(HOST).map(scalar);
    if let Some(trace) = take(TRACE).map(scalar).filter(|t| !t.is_empty()) {
        rec.trace = Some(match rec.trace.take() {
            Some(joined) => format!("{trace}\n{joined}"),
            None => trace,
        });
    }
    rec.fields = flat
        .iter()
        .zip(&used)
        .filter(|(_, u)| !**u)
        .map(|((k, v), _)| (k.as_str().into(), scalar(v).into()))
        .collect();
    rec.format = Format::Json;
    Ok(())
}

fn flatten<'a>(
    prefix: &str,
    map: &'a Map<String, Value>,
    depth: usize,
    out: &mut Vec<(String, &'a Value)>,
) {
    for (k, v) in map {
        let key = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        match v {
            Value::Object(inner) if depth < 3 => flatten(&key, inner, depth + 1, out),
            _ => out.push((key, v)),
        }
    }
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(items) if items.iter().all(Value::is_string) => items
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join("\n"),
        other => other.to_string(),
    }
}

/// Named levels, or numeric ones: Bunyan/pino (10–60) and syslog (0–7).
fn json_level(v: &Value) -> Level {
    match v {
        Value::String(s) => Level::parse(s).unwrap_or(Level::Unknown),
        Value::Number(n) => match n.as_u64() {
            Some(0..=7) => Level::from_syslog(n.as_u64().unwrap_or(7) as u8),
            Some(10..=19) => Level::Trace,
            Some(20..=29) => Level::Debug,
            Some(30..=39) => Level::Info,
            Some(40..=49) => Level::Warn,
            Some(50..=59) => Level::Error,
            Some(60..) => Level::Critical,
            _ => Level::Unknown,
        },
        _ => Level::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ecs_and_pino() {
        let mut rec = LogRecord::default();
        let line = r#"{"@timestamp":"2024-03-01T12:00:00Z","log":{"level":"ERROR"},"message":"db down","service":{"name":"api"},"error":{"stack_trace":"java.lang.X: y\n\tat a.B.c(B.java:1)"},"user":"u1","n":3}"#;
        parse(line, &mut rec, 2024).expect("parses");
        assert_eq!(rec.level, Level::Error);
        assert_eq!(rec.service.as_deref(), Some("api"));
        assert_eq!(rec.message, "db down");
        assert!(
            rec.trace
                .as_deref()
                .is_some_and(|t| t.contains("\tat a.B.c"))
        );
        assert_eq!(
            rec.fields,
            vec![("user".into(), "u1".into()), ("n".into(), "3".into())]
        );

        let mut rec = LogRecord::default();
        parse(
            r#"{"level":50,"time":1709294400000,"pid":1,"hostname":"h","msg":"x"}"#,
            &mut rec,
            2024,
        )
        .expect("pino");
        assert_eq!(
            (rec.level, rec.ts, rec.host.as_deref()),
            (Level::Error, Some(1_709_294_400_000), Some("h"))
        );
    }

    #[test]
    fn rejects_non_objects() {
        for line in [r#"{"a":1"#, "{not json}", r#"[1,2]"#] {
            let err = parse(line, &mut LogRecord::default(), 2024).expect_err(line);
            assert_eq!(err.0, DeadReason::InvalidJson);
        }
    }
}
