use anyhow::Result;
use clap::Args;

use crate::{Outcome, output};

#[derive(Debug, Args)]
pub struct SchemaArgs {}

pub fn run(_args: SchemaArgs) -> Result<Outcome> {
    let schema = weir_spec::pipeline_schema(&crate::project::registry());
    output::line(serde_json::to_string_pretty(&schema)?);
    Ok(Outcome::Success)
}
