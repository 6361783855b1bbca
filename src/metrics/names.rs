//! Every metric name the job exports, `hephaestus_<noun>_<unit>`: `_total` on counters, base
//! units (seconds, bytes) in the name. Labels are `operator`, `worker`, `output`, `source`,
//! `reason`, `state`, `topic`, `partition`, `outcome`: never a template, fingerprint or other
//! unbounded value. The dashboard test checks its queries against `ALL`.

// Ingestion.
pub const INGESTED_LINES: &str = "hephaestus_ingested_lines_total";
pub const INGESTED_BYTES: &str = "hephaestus_ingested_bytes_total";
pub const KAFKA_LAG: &str = "hephaestus_kafka_consumer_lag";
pub const KAFKA_RETRIES: &str = "hephaestus_kafka_delivery_retries_total";
/// Consumer errors (polls, commits), by librdkafka's error code (`reason`).
pub const KAFKA_CONSUMER_ERRORS: &str = "hephaestus_kafka_consumer_errors_total";
/// Producer errors (deliveries, sends, the client), by `output` and error code (`reason`).
pub const KAFKA_PRODUCER_ERRORS: &str = "hephaestus_kafka_producer_errors_total";

// Per operator.
pub const RECORDS_IN: &str = "hephaestus_operator_records_in_total";
pub const RECORDS_OUT: &str = "hephaestus_operator_records_out_total";
/// Histogram of the time an operator spends per scheduling (timely's logging); its `_sum` is the
/// operator's busy seconds.
pub const BUSY: &str = "hephaestus_operator_busy_seconds";
/// Histogram of the time from a record's ingestion to the operator's output of it.
pub const LATENCY: &str = "hephaestus_operator_latency_seconds";

// End to end.
pub const EVENT_TO_INCIDENT: &str = "hephaestus_event_to_incident_seconds";
pub const FRONTIER_LAG: &str = "hephaestus_frontier_lag_seconds";

// Detection.
pub const ERROR_EVENTS: &str = "hephaestus_error_events_total";
pub const DEAD_LETTERS: &str = "hephaestus_dead_letters_total";
pub const TEMPLATES: &str = "hephaestus_templates";
pub const TEMPLATES_EVICTED: &str = "hephaestus_templates_evicted_total";
pub const INCIDENTS: &str = "hephaestus_incidents";
pub const INCIDENT_UPDATES: &str = "hephaestus_incident_updates_total";
pub const INCIDENTS_EVICTED: &str = "hephaestus_incidents_evicted_total";
/// Error events folded into their service's overflow incident (past `new_per_window`), by
/// `stage`: `cluster` (no new template) or `incident` (no new incident).
pub const EVENTS_FOLDED: &str = "hephaestus_events_folded_total";

// Model stage (and deployment, reserved for its issue).
pub const MODEL_REQUESTS: &str = "hephaestus_model_requests_total";
pub const MODEL_TOKENS: &str = "hephaestus_model_tokens_total";
pub const MODEL_COST: &str = "hephaestus_model_cost_usd_total";
pub const MODEL_GENERATION: &str = "hephaestus_model_generation_seconds";
pub const FIX_ATTEMPTS: &str = "hephaestus_fix_attempts_total";
pub const FIX_SUCCESS_RATIO: &str = "hephaestus_fix_success_ratio";
pub const FIX_COST: &str = "hephaestus_fix_cost_usd";
pub const MODEL_QUEUE: &str = "hephaestus_model_queue";
pub const MODEL_QUEUE_MERGED: &str = "hephaestus_model_queue_merged_total";
pub const MODEL_QUEUE_OVERFLOW: &str = "hephaestus_model_queue_overflow_total";
pub const MODEL_ADMISSIONS: &str = "hephaestus_model_admissions_total";
pub const DEPLOYS: &str = "hephaestus_deploys_total";
pub const ROLLBACKS: &str = "hephaestus_rollbacks_total";
pub const TIME_TO_PRODUCTION: &str = "hephaestus_fix_time_to_production_seconds";
pub const FIX_ACCURACY: &str = "hephaestus_fix_accuracy";

// The MCP server (`hephaestus mcp --metrics ADDR`).
pub const MCP_REQUESTS: &str = "hephaestus_mcp_requests_total";
pub const MCP_REQUEST_SECONDS: &str = "hephaestus_mcp_request_seconds";

// Process.
pub const BUILD_INFO: &str = "hephaestus_build_info";
pub const START_TIME: &str = "hephaestus_start_time_seconds";
pub const RESIDENT_MEMORY: &str = "hephaestus_process_resident_memory_bytes";
pub const CPU: &str = "hephaestus_process_cpu_seconds_total";

/// Every name, for checks (a dashboard or rule may only use these).
pub const ALL: &[&str] = &[
    INGESTED_LINES,
    INGESTED_BYTES,
    KAFKA_LAG,
    KAFKA_RETRIES,
    KAFKA_CONSUMER_ERRORS,
    KAFKA_PRODUCER_ERRORS,
    RECORDS_IN,
    RECORDS_OUT,
    BUSY,
    LATENCY,
    EVENT_TO_INCIDENT,
    FRONTIER_LAG,
    ERROR_EVENTS,
    DEAD_LETTERS,
    TEMPLATES,
    TEMPLATES_EVICTED,
    INCIDENTS,
    INCIDENT_UPDATES,
    INCIDENTS_EVICTED,
    EVENTS_FOLDED,
    MODEL_REQUESTS,
    MODEL_TOKENS,
    MODEL_COST,
    MODEL_GENERATION,
    FIX_ATTEMPTS,
    FIX_SUCCESS_RATIO,
    FIX_COST,
    MODEL_QUEUE,
    MODEL_QUEUE_MERGED,
    MODEL_QUEUE_OVERFLOW,
    MODEL_ADMISSIONS,
    DEPLOYS,
    ROLLBACKS,
    TIME_TO_PRODUCTION,
    FIX_ACCURACY,
    MCP_REQUESTS,
    MCP_REQUEST_SECONDS,
    BUILD_INFO,
    START_TIME,
    RESIDENT_MEMORY,
    CPU,
];

/// Names that are histograms (exported as `_bucket`, `_sum`, `_count`).
pub const HISTOGRAMS: &[&str] = &[
    BUSY,
    LATENCY,
    EVENT_TO_INCIDENT,
    MODEL_GENERATION,
    TIME_TO_PRODUCTION,
    MCP_REQUEST_SECONDS,
];
