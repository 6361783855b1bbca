//! Choosing what the model stage talks to: the configured backend (builtin, command, or an
//! OpenAI-compatible API) and the fixes topic, and the error when either cannot be built.
//!
//! In: the `[model]` config and the Kafka config. Out: a backend, a topic producer, or a
//! `StageError` that says which setting is missing. No state.

use std::sync::Arc;

use super::fixes::FixesTopic;
use super::protocol::Backend;
use super::{BackendKind, ModelConfig, builtin, command};

#[derive(Debug, thiserror::Error)]
pub enum StageError {
    #[error("model stage: {0}")]
    Config(String),
    #[error("model stage: {0}")]
    Io(#[from] std::io::Error),
}

/// Picks the configured backend.
pub fn backend(config: &ModelConfig) -> Result<Arc<dyn Backend>, StageError> {
    Ok(match config.backend {
        BackendKind::Builtin => Arc::new(builtin::Builtin),
        BackendKind::Command => {
            if config.command.program.is_empty() {
                return Err(StageError::Config(
                    "backend = \"command\" needs [model.command] program".into(),
                ));
            }
            Arc::new(command::CommandBackend {
                config: config.command.clone(),
                dir: config.repository.path.clone(),
            })
        }
        BackendKind::Openai => Arc::new(
            super::openai::OpenAi::new(&config.openai)
                .map_err(|e| StageError::Config(e.to_string()))?,
        ),
    })
}

/// The fixes topic, when `kafka.produce.fixes` asks for it.
pub fn fixes_topic(
    kafka: Option<&crate::kafka::KafkaConfig>,
) -> Result<Option<FixesTopic>, StageError> {
    match kafka.filter(|k| k.produce.fixes) {
        Some(k) => FixesTopic::new(k).map(Some).map_err(StageError::Config),
        None => Ok(None),
    }
}
