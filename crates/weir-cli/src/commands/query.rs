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
    let blobs = engine.blobs().object_store().clone();
    let (schema, batches) = weir_data::query(&blobs, &tables, &namespace, &args.sql).await?;
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
