use anyhow::Result;
use clap::Args;
use weir_exec::Registry;

use crate::{Outcome, output};

#[derive(Debug, Args)]
pub struct SchemaArgs {}

pub fn run(_args: SchemaArgs) -> Result<Outcome> {
    let schema = weir_spec::pipeline_schema(&Registry::builtin());
    output::line(serde_json::to_string_pretty(&schema)?);
    Ok(Outcome::Success)
}
