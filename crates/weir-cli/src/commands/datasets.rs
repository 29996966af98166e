use anyhow::{Result, anyhow, bail};
use clap::Args;
use weir_store::DatasetVersionRow;

use crate::project::Globals;
use crate::{Outcome, output};

#[derive(Debug, Args)]
pub struct DatasetsArgs {
    /// A dataset: `pipeline.step` (this project's namespace) or
    /// `namespace.pipeline.step`. Without it, every dataset is listed.
    pub name: Option<String>,

    /// Print the dataset's schema.
    #[arg(long, requires = "name", conflicts_with = "head")]
    pub schema: bool,

    /// Print its first N rows.
    #[arg(long, value_name = "N", requires = "name")]
    pub head: Option<usize>,

    /// Which version (default: the latest), with `--schema` or `--head`.
    #[arg(long, value_name = "N", requires = "name")]
    pub version: Option<u32>,
}

pub async fn run(globals: &Globals, args: DatasetsArgs) -> Result<Outcome> {
    let engine = globals.engine().await?;
    let namespace = globals.namespace()?;
    let store = engine.store();
    let Some(name) = &args.name else {
        let all = store.datasets(None).await?;
        if all.is_empty() {
            output::line("no datasets yet; data steps (`load:`, `sql:`) produce them");
            return Ok(Outcome::Success);
        }
        let rows: Vec<Vec<String>> = all
            .iter()
            .map(|d| {
                vec![
                    qualified(d, &namespace),
                    d.version.to_string(),
                    d.rows.to_string(),
                    output::memory(d.bytes / 1024),
                    d.created_at.format("%Y-%m-%d %H:%M:%S").to_string(),
                    d.run_id.to_string(),
                ]
            })
            .collect();
        output::text(output::table(
            &["DATASET", "LATEST", "ROWS", "SIZE", "UPDATED (UTC)", "RUN"],
            &rows,
        ));
        return Ok(Outcome::Success);
    };
    let (ns, dataset) = split_name(name, &namespace)?;
    if !args.schema && args.head.is_none() {
        let versions = store.dataset_versions(&ns, &dataset).await?;
        if versions.is_empty() {
            bail!("{}", not_found(name));
        }
        let rows: Vec<Vec<String>> = versions
            .iter()
            .map(|d| {
                vec![
                    d.version.to_string(),
                    d.rows.to_string(),
                    output::memory(d.bytes / 1024),
                    d.created_at.format("%Y-%m-%d %H:%M:%S").to_string(),
                    d.run_id.to_string(),
                    d.inputs
                        .iter()
                        .map(|i| format!("{}@{}", i.name, i.version))
                        .collect::<Vec<_>>()
                        .join(", "),
                ]
            })
            .collect();
        output::text(output::table(
            &["VERSION", "ROWS", "SIZE", "CREATED (UTC)", "RUN", "INPUTS"],
            &rows,
        ));
        return Ok(Outcome::Success);
    }
    let version = store
        .dataset_version(&ns, &dataset, args.version)
        .await?
        .ok_or_else(|| match args.version {
            Some(v) => anyhow!(
                "`{name}` has no version {v}\n  hint: `weir datasets {name}` lists its versions"
            ),
            None => anyhow!("{}", not_found(name)),
        })?;
    if args.schema {
        let schema = weir_data::schema_from_json(&version.schema)?;
        let rows: Vec<Vec<String>> = schema
            .fields()
            .iter()
            .map(|f| {
                vec![
                    f.name().clone(),
                    f.data_type().to_string(),
                    if f.is_nullable() { "yes" } else { "no" }.to_owned(),
                ]
            })
            .collect();
        output::line(format!(
            "{} version {}",
            qualified(&version, &namespace),
            version.version
        ));
        output::text(output::table(&["COLUMN", "TYPE", "NULLABLE"], &rows));
        return Ok(Outcome::Success);
    }
    let n = args.head.unwrap_or(20);
    let blobs = engine.blobs().object_store().clone();
    let batches = weir_data::head(&blobs, &version.files, n).await?;
    let schema = weir_data::schema_from_json(&version.schema)?;
    output::text(weir_data::format_batches(
        &schema,
        &batches,
        weir_data::Format::Table,
    )?);
    output::line("");
    Ok(Outcome::Success)
}

/// `pipeline.step` in the project's namespace, `ns.pipeline.step` elsewhere.
fn qualified(d: &DatasetVersionRow, namespace: &str) -> String {
    if d.namespace == namespace {
        d.name.clone()
    } else {
        format!("{}.{}", d.namespace, d.name)
    }
}

fn split_name(name: &str, namespace: &str) -> Result<(String, String)> {
    let parts: Vec<&str> = name.split('.').collect();
    match parts.as_slice() {
        [pipeline, step] => Ok((namespace.to_owned(), format!("{pipeline}.{step}"))),
        [ns, pipeline, step] => Ok(((*ns).to_owned(), format!("{pipeline}.{step}"))),
        _ => bail!(
            "`{name}` is not a dataset name\n  hint: write `pipeline.step`, or `namespace.pipeline.step`"
        ),
    }
}

fn not_found(name: &str) -> String {
    format!("no dataset `{name}`\n  hint: `weir datasets` lists the datasets of this project")
}
