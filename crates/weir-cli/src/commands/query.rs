use anyhow::Result;
use clap::{Args, ValueEnum};
use weir_data::{Format, LakeTable};

use crate::project::Globals;
use crate::{Outcome, output};

#[derive(Debug, Args)]
pub struct QueryArgs {
    /// SQL over the latest version of every dataset: tables are
    /// `pipeline.step` (this project's namespace) or `namespace.pipeline.step`.
    pub sql: String,

    /// Output format.
    #[arg(long, short = 'f', value_enum, default_value_t = QueryFormat::Table)]
    pub format: QueryFormat,

    /// Read a dataset at another version than its latest, e.g.
    /// `--version sales.clean=3` (repeatable).
    #[arg(long = "version", value_name = "DATASET=N", value_parser = parse_pin)]
    pub versions: Vec<(String, u32)>,
}

fn parse_pin(raw: &str) -> Result<(String, u32), String> {
    let (name, version) = raw
        .split_once('=')
        .ok_or_else(|| format!("expected `DATASET=N`, e.g. `sales.clean=3`, found `{raw}`"))?;
    let version = version
        .trim()
        .parse::<u32>()
        .ok()
        .filter(|v| *v >= 1)
        .ok_or_else(|| format!("`{version}` is not a version number (1, 2, ...)"))?;
    Ok((name.trim().to_owned(), version))
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum QueryFormat {
    Table,
    Csv,
    Json,
}

pub async fn run(globals: &Globals, args: QueryArgs) -> Result<Outcome> {
    let engine = globals.engine().await?;
    let namespace = globals.namespace()?;
    let tables: Vec<LakeTable> = engine
        .store()
        .datasets(None)
        .await?
        .into_iter()
        .filter_map(|d| {
            let (pipeline, step) = d.name.split_once('.')?;
            Some(LakeTable {
                namespace: d.namespace.clone(),
                pipeline: pipeline.to_owned(),
                step: step.to_owned(),
                files: d.files.clone(),
            })
        })
        .collect();
    let mut tables = tables;
    let mut pinned: Vec<String> = Vec::new();
    for (name, version) in &args.versions {
        // Unquoted SQL names are case-insensitive; so are pins.
        let name = &name.to_ascii_lowercase();
        if pinned.contains(name) {
            anyhow::bail!(
                "`--version` pins `{name}` twice\nhint: give each dataset one `--version DATASET=N`"
            );
        }
        pinned.push(name.clone());
        let parts: Vec<&str> = name.split('.').collect();
        let (ns, dataset) = match parts.as_slice() {
            [p, s] => (namespace.clone(), format!("{p}.{s}")),
            [n, p, s] => ((*n).to_owned(), format!("{p}.{s}")),
            _ => anyhow::bail!(
                "`--version {name}={version}`: name the dataset as `pipeline.step` or `namespace.pipeline.step`"
            ),
        };
        let Some(row) = engine
            .store()
            .dataset_version(&ns, &dataset, Some(*version))
            .await?
        else {
            let known = engine.store().dataset_versions(&ns, &dataset).await?;
            let shown = if ns == namespace {
                dataset.clone()
            } else {
                format!("{ns}.{dataset}")
            };
            match known.iter().map(|v| v.version).max() {
                Some(latest) => anyhow::bail!(
                    "dataset `{shown}` has no version {version}\nhint: its versions are 1 to {latest} (`weir datasets {shown}`)"
                ),
                None => {
                    anyhow::bail!("no dataset `{shown}`\nhint: `weir datasets` lists the datasets")
                }
            }
        };
        if let Some(table) = tables
            .iter_mut()
            .find(|t| t.namespace == ns && format!("{}.{}", t.pipeline, t.step) == dataset)
        {
            table.files = row.files;
        }
    }
    let blobs = engine.blobs().object_store().clone();
    let (schema, batches) = match weir_data::query(&blobs, &tables, &namespace, &args.sql).await {
        Ok(result) => result,
        Err(e) => {
            let mut sources = weir_spec::SourceMap::default();
            sources.insert("<query>", args.sql.clone());
            crate::render::diagnostics(&[weir_data::query_diagnostic(&args.sql, &e)], &sources);
            return Ok(Outcome::Failure);
        }
    };
    let format = match args.format {
        QueryFormat::Table => Format::Table,
        QueryFormat::Csv => Format::Csv,
        QueryFormat::Json => Format::Json,
    };
    output::text(weir_data::format_batches(&schema, &batches, format)?);
    if matches!(format, Format::Table) {
        output::line("");
    }
    Ok(Outcome::Success)
}
