//! `hephaestus fixes SPEC list|show|approve|reject|rollback`: the operator's view of the loop.
//!
//! In: a job spec (its `[model.repository]` and `[deploy]` sections find the repository and the
//! deployment record) and an action. Out: text for the terminal (a table, a fix as JSON, what
//! changed), notices sent as the running stage would. State: in the store.

use std::path::Path;

use crate::model::ModelConfig;
use crate::model::deploy::manager::Manager;
use crate::model::deploy::notify::Notifier;
use crate::model::deploy::store::Store;
use crate::spec::Spec;

/// What to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    List,
    Show(String),
    Approve(String),
    Reject(String, String),
    Rollback(String, String),
}

#[derive(Debug, thiserror::Error)]
pub enum FixesError {
    #[error("{0}")]
    Spec(String),
    #[error(transparent)]
    Deploy(#[from] crate::model::deploy::DeployError),
}

/// The deployment loop of a spec, its notifier, and its model stage (paths resolved).
pub fn manager(spec_path: &Path) -> Result<(Manager, Notifier, ModelConfig), FixesError> {
    let spec = Spec::load(spec_path).map_err(|e| FixesError::Spec(e.to_string()))?;
    let dir = spec_path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let resolve = |p: std::path::PathBuf| if p.is_absolute() { p } else { dir.join(p) };
    let (mut model, mut deploy) = (spec.model.clone(), spec.deploy.clone());
    model.plan(resolve).map_err(FixesError::Spec)?;
    deploy.plan(resolve).map_err(FixesError::Spec)?;
    let notifier = Notifier::new(&deploy.notify).map_err(FixesError::Spec)?;
    Ok((
        Manager::new(&deploy, &model.repository, &model.sandbox)?,
        notifier,
        model,
    ))
}

/// Runs one action; what to print.
pub fn run(spec_path: &Path, action: &Action) -> Result<String, FixesError> {
    let (m, notifier, _) = manager(spec_path)?;
    let store: &Store = &m.store;
    let moved = match action {
        Action::List => {
            let book = store
                .load()
                .map_err(crate::model::deploy::DeployError::from)?;
            let mut out = format!(
                "{:<8} {:<18} {:<17} {:<8} TITLE\n",
                "ID", "STATUS", "FINGERPRINT", "RELEASE"
            );
            for f in &book.fixes {
                out.push_str(&format!(
                    "{:<8} {:<18} {:<17} {:<8} {}\n",
                    f.id,
                    f.status.as_str(),
                    f.fingerprint,
                    f.release.as_deref().unwrap_or("-"),
                    f.title
                ));
            }
            if book.fixes.is_empty() {
                out.push_str(&format!("(no fixes in {})\n", store.path.display()));
            }
            return Ok(out);
        }
        Action::Show(id) => {
            let book = store
                .load()
                .map_err(crate::model::deploy::DeployError::from)?;
            let fix = book
                .fix(id)
                .ok_or_else(|| crate::model::deploy::DeployError::NoFix(id.clone()))?;
            return Ok(serde_json::to_string_pretty(fix).unwrap_or_default() + "\n");
        }
        Action::Approve(id) => m.approve(id)?,
        Action::Reject(id, why) => m.reject(id, why)?,
        Action::Rollback(id, why) => m.rollback(id, why)?,
    };
    if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        rt.block_on(async {
            for n in &moved.notices {
                if let Err(e) = notifier.send(n).await {
                    eprintln!("hephaestus: notify: {e}");
                }
            }
        });
    }
    Ok(format!(
        "{} {}{}\n",
        moved.fix.id,
        moved.fix.status.as_str(),
        moved
            .fix
            .release
            .map(|r| format!(" (release {r})"))
            .unwrap_or_default()
    ))
}
