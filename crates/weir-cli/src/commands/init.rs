use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Args;

use crate::{Outcome, output};

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Folder to create the project in (created if missing; must be empty).
    pub dir: PathBuf,
}

/// The sample project: the same files as `examples/demo`, so the README's
/// demo and `weir init` never drift apart.
const FILES: &[(&str, &str)] = &[
    (
        "weir.yaml",
        include_str!("../../../../examples/demo/weir.yaml"),
    ),
    (
        ".gitignore",
        include_str!("../../../../examples/demo/.gitignore"),
    ),
    (
        "environments/dev.yaml",
        include_str!("../../../../examples/demo/environments/dev.yaml"),
    ),
    (
        "pipelines/sales.yaml",
        include_str!("../../../../examples/demo/pipelines/sales.yaml"),
    ),
    (
        "pipelines/revenue.yaml",
        include_str!("../../../../examples/demo/pipelines/revenue.yaml"),
    ),
    (
        "schemas/orders.yaml",
        include_str!("../../../../examples/demo/schemas/orders.yaml"),
    ),
    (
        "schemas/customers.yaml",
        include_str!("../../../../examples/demo/schemas/customers.yaml"),
    ),
    (
        "schemas/by_segment.yaml",
        include_str!("../../../../examples/demo/schemas/by_segment.yaml"),
    ),
    (
        "data/orders.csv",
        include_str!("../../../../examples/demo/data/orders.csv"),
    ),
    (
        "data/customers.csv",
        include_str!("../../../../examples/demo/data/customers.csv"),
    ),
];

pub fn run(args: InitArgs) -> Result<Outcome> {
    let dir = &args.dir;
    if dir.exists() {
        let mut entries =
            fs_err::read_dir(dir).with_context(|| format!("cannot read `{}`", dir.display()))?;
        if entries.next().is_some() {
            bail!(
                "`{}` is not empty; weir init only writes into a new or empty folder\n  hint: pick a new folder, e.g. `weir init {}-weir`",
                dir.display(),
                dir.display()
            );
        }
    }
    for (path, content) in FILES {
        write(dir, path, content)?;
    }
    output::line(format!("created a weir project in `{}`", dir.display()));
    output::line("next:");
    output::line(format!("  cd {}", dir.display()));
    output::line("  weir check        # validate every pipeline");
    output::line("  weir run sales    # run it, with live progress");
    output::line("  weir run revenue  # the same with data steps: versioned datasets, SQL");
    output::line("  weir query \"SELECT * FROM revenue.ranking\"");
    output::line("  weir runs         # what ran");
    Ok(Outcome::Success)
}

fn write(dir: &Path, path: &str, content: &str) -> Result<()> {
    let target = dir.join(path);
    if let Some(parent) = target.parent() {
        fs_err::create_dir_all(parent)?;
    }
    fs_err::write(&target, content)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every file of `examples/demo` is in the embedded list, so `weir init`
    /// writes the whole demo.
    #[test]
    fn init_embeds_every_file_of_the_demo() {
        let demo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/demo");
        let mut found = Vec::new();
        let mut dirs = vec![demo.clone()];
        while let Some(dir) = dirs.pop() {
            for entry in fs_err::read_dir(&dir).expect("demo dir") {
                let path = entry.expect("entry").path();
                if path.is_dir() {
                    dirs.push(path);
                } else {
                    let relative = path.strip_prefix(&demo).expect("inside");
                    found.push(relative.to_string_lossy().replace('\\', "/"));
                }
            }
        }
        found.sort();
        let mut embedded: Vec<String> = FILES.iter().map(|(p, _)| (*p).to_owned()).collect();
        embedded.sort();
        assert_eq!(found, embedded);
    }
}
