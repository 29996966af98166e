//! Finding the project and opening its engine: shared by every command.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, anyhow};
use weir_engine::{Engine, EngineConfig};
use weir_exec::Registry;

/// Options every command accepts.
#[derive(Debug, Clone)]
pub struct Globals {
    pub project: Option<PathBuf>,
    pub database_url: Option<String>,
}

impl Globals {
    /// The project folder: `--project`, else the nearest folder upwards from
    /// the current one that holds a `weir.yaml`.
    pub fn project_root(&self) -> Result<PathBuf> {
        if let Some(dir) = &self.project {
            if !dir.join("weir.yaml").is_file() {
                return Err(anyhow!(
                    "`{}` is not a weir project (no `weir.yaml` in it)\n  hint: create one with `weir init {}`",
                    dir.display(),
                    dir.display()
                ));
            }
            return Ok(dir.clone());
        }
        let cwd = std::env::current_dir().context("cannot read the current directory")?;
        weir_spec::find_project_root(&cwd).ok_or_else(|| {
            anyhow!(
                "no `weir.yaml` in `{}` or any parent folder\n  hint: run `weir init DIR` to create a project, or pass `--project DIR`",
                cwd.display()
            )
        })
    }

    /// The project's namespace (`namespace:` in `weir.yaml`, else `default`).
    pub fn namespace(&self) -> Result<String> {
        let root = self.project_root()?;
        let (config, _) = weir_spec::load_project_config(&root);
        Ok(if config.namespace.is_empty() {
            weir_types::DEFAULT_NAMESPACE.to_owned()
        } else {
            config.namespace
        })
    }

    pub async fn engine(&self) -> Result<Engine> {
        let root = self.project_root()?;
        let mut config = EngineConfig::for_project(&root);
        config.database_url = self.database_url.clone();
        Engine::open(config, Arc::new(registry()))
            .await
            .context("cannot open the project's stores")
    }
}

/// Every step kind this binary knows: weir-exec's built-in kinds plus the
/// data kinds of weir-data. The binary is where the two meet (weir-exec must
/// not depend on DataFusion).
pub fn registry() -> Registry {
    let mut registry = Registry::builtin();
    weir_data::register_actions(&mut registry);
    registry
}

/// Validates the project (the pipelines in `only`, all when empty) and
/// type-checks its data steps; type errors join the spec's diagnostics.
pub async fn check(root: &Path, only: &[String]) -> (weir_spec::CheckOutput, weir_data::TypeCheck) {
    let registry = registry();
    let mut checked = weir_spec::check_project(root, &registry, only);
    let mut types = weir_data::typecheck(&checked).await;
    checked.diagnostics.append(&mut types.diagnostics);
    weir_spec::sort_diagnostics(&mut checked.diagnostics);
    (checked, types)
}

/// A run with all its tasks; an unknown id says where to find the real ones.
pub async fn run_summary(
    engine: &Engine,
    run: weir_types::RunId,
) -> Result<weir_engine::RunSummary> {
    match engine.summary(run).await {
        Err(weir_engine::Error::RunNotFound(_)) => Err(run_not_found(run)),
        other => Ok(other?),
    }
}

/// The error for a run id this project's store does not have.
pub fn run_not_found(run: weir_types::RunId) -> anyhow::Error {
    anyhow!("run {run} does not exist in this project\n  hint: `weir runs` lists its runs")
}
