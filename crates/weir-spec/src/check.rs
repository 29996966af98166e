//! `weir check`: reads a project, validates every file and builds a [`Plan`]
//! per pipeline, collecting every diagnostic of every file before returning.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use weir_types::{Diagnostic, Span};

use crate::catalog::ActionCatalog;
use crate::data::{AnonymizeSpec, ColumnContract, Contract, ContractSpec, StepData};
use crate::de::from_node_in;
use crate::graph::topological_order;
use crate::node::{Node, NodeValue, parse_yaml};
use crate::params::matches_type;
use crate::plan::{Environment, ParamDecl, Plan, RetryPolicy, Step};
use crate::spec::{
    DurationSpec, EnvironmentSpec, PipelineSpec, ProjectSpec, RetriesSpec, StepSpec, TriggerSpec,
    struct_fields,
};
use crate::suggest::{did_you_mean, list_names};
use crate::template::{self, BUILTIN_GLOBALS, RUN_FIELDS, TemplateScan};

/// IO failures reading a project. [`check_project`] reports them as
/// `unreadable-file` diagnostics so that one unreadable file does not hide
/// the problems of the others; a missing `weir.yaml` or environment file is
/// a diagnostic of its own, not this.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read `{path}`")]
    Io {
        /// Project-relative path, with `/`.
        path: String,
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    fn into_diagnostic(self) -> Diagnostic {
        let Error::Io { path, source } = self;
        let hint = match source.kind() {
            std::io::ErrorKind::PermissionDenied => "check the file's permissions",
            _ => "check that the file exists and can be read",
        };
        Diagnostic::error("unreadable-file", format!("cannot read `{path}`: {source}"))
            .in_file(path)
            .with_help(hint)
    }
}

/// The validated `weir.yaml`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectConfig {
    pub name: String,
    pub description: Option<String>,
    pub namespace: String,
    /// Environment runs use when none is chosen.
    pub environment: Option<String>,
}

/// Project-relative path (with `/`) → file text, for every file read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourceMap(BTreeMap<String, String>);

impl SourceMap {
    pub fn get(&self, file: &str) -> Option<&str> {
        self.0.get(file).map(String::as_str)
    }

    pub fn insert(&mut self, file: impl Into<String>, text: impl Into<String>) {
        self.0.insert(file.into(), text.into());
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

/// What `weir check` found.
#[derive(Debug, Clone)]
pub struct CheckOutput {
    pub config: ProjectConfig,
    /// Plans of the pipelines that have no error, by pipeline name.
    pub plans: BTreeMap<String, Plan>,
    /// Sorted by file, then position.
    pub diagnostics: Vec<Diagnostic>,
    pub sources: SourceMap,
}

impl CheckOutput {
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }
}

/// The nearest directory at or above `start` that holds a `weir.yaml`.
pub fn find_project_root(start: &Path) -> Option<PathBuf> {
    let start = std::path::absolute(start).ok()?;
    start
        .ancestors()
        .find(|dir| dir.join("weir.yaml").is_file())
        .map(Path::to_path_buf)
}

/// Loads `environments/<name>.yaml` (or `.yml`).
#[expect(
    clippy::result_large_err,
    reason = "Diagnostic is the contract type of user errors; they are rare and off the hot path"
)]
pub fn load_environment(root: &Path, name: &str) -> Result<Environment, Diagnostic> {
    let existing = try_list_yaml(&root.join("environments")).unwrap_or_default();
    let Some((_, path)) = existing.iter().find(|(stem, _)| stem == name) else {
        return Err(unknown_environment(name, &existing));
    };
    let file = format!("environments/{}", file_name(path));
    let mut read_errors = Vec::new();
    let Some(text) = read_source(path, &file, &mut read_errors) else {
        return Err(read_errors.into_iter().next().unwrap_or_else(|| {
            Diagnostic::error("unreadable-file", format!("cannot read `{file}`")).in_file(&file)
        }));
    };
    let (env, mut diags) = check_environment(name, &file, &text);
    match env {
        Some(env) if !diags.iter().any(Diagnostic::is_error) => Ok(env),
        _ => Err(diags
            .drain(..)
            .find(Diagnostic::is_error)
            .unwrap_or_else(|| {
                Diagnostic::error("invalid-value", "invalid environment").in_file(&file)
            })),
    }
}

fn unknown_environment(name: &str, existing: &[(String, PathBuf)]) -> Diagnostic {
    let names: Vec<&str> = existing.iter().map(|(s, _)| s.as_str()).collect();
    let mut help = format!("create `environments/{name}.yaml`");
    if let Some(s) = did_you_mean(name, names.iter().copied()) {
        help = format!("did you mean `{s}`? Otherwise {help}");
    } else if !names.is_empty() {
        help = format!(
            "existing environments are {}; or {help}",
            list_names(&names)
        );
    }
    Diagnostic::error(
        "unknown-environment",
        format!("environment `{name}` does not exist"),
    )
    .with_help(help)
}

/// The longest `timeout:` or `backoff:` weir accepts.
const MAX_DURATION: Duration = Duration::from_secs(366 * 24 * 3600);

/// Reads and validates only `weir.yaml`, for commands that need the
/// project's settings (namespace, default environment) but not its pipelines.
pub fn load_project_config(root: &Path) -> (ProjectConfig, Vec<Diagnostic>) {
    let mut sources = SourceMap::default();
    let mut diags = Vec::new();
    let config = check_project_file(root, &mut sources, &mut diags);
    (config, diags)
}

/// Validates the project at `root`: `weir.yaml`, every environment and the
/// pipelines named in `only` (all when empty).
pub fn check_project(root: &Path, catalog: &dyn ActionCatalog, only: &[String]) -> CheckOutput {
    let mut sources = SourceMap::default();
    let mut diags = Vec::new();

    let config = check_project_file(root, &mut sources, &mut diags);

    let mut environments: BTreeMap<String, Environment> = BTreeMap::new();
    let env_files = list_yaml(root, "environments", &mut diags);
    for (stem, path) in &env_files {
        let file = format!("environments/{}", file_name(path));
        let Some(text) = read_source(path, &file, &mut diags) else {
            continue;
        };
        let (env, d) = check_environment(stem, &file, &text);
        diags.extend(d);
        sources.insert(&file, text);
        if let Some(env) = env {
            environments.entry(stem.clone()).or_insert(env);
        }
    }
    let env_names: Vec<String> = env_files.iter().map(|(s, _)| s.clone()).collect();
    let known_envs = EnvNames {
        names: env_names,
        files: env_files,
    };

    if let Some(default_env) = &config.environment
        && !known_envs.contains(default_env)
    {
        let span = sources
            .get("weir.yaml")
            .and_then(|t| parse_yaml("weir.yaml", t).ok())
            .and_then(|n| n.get("environment").map(|v| v.span));
        let mut d = unknown_environment(default_env, &known_envs.files).in_file("weir.yaml");
        if let Some(span) = span {
            d = d.with_label(span, "no such environment");
        }
        diags.push(d);
    }

    let contracts = check_contracts(root, &mut sources, &mut diags);

    let pipeline_files = list_yaml(root, "pipelines", &mut diags);
    let mut by_name: BTreeMap<&str, &PathBuf> = BTreeMap::new();
    for (stem, path) in &pipeline_files {
        if let Some(first) = by_name.get(stem.as_str()) {
            diags.push(
                Diagnostic::error(
                    "duplicate-pipeline",
                    format!("pipeline `{stem}` is defined by two files"),
                )
                .in_file(format!("pipelines/{}", file_name(path)))
                .with_help(format!(
                    "rename or delete `pipelines/{}` or `pipelines/{}`",
                    file_name(first),
                    file_name(path)
                )),
            );
            continue;
        }
        by_name.insert(stem, path);
    }
    for name in only {
        if !by_name.contains_key(name.as_str()) {
            let mut d = Diagnostic::error(
                "unknown-pipeline",
                format!("pipeline `{name}` does not exist"),
            );
            d = match did_you_mean(name, by_name.keys().copied()) {
                Some(s) => d.with_help(format!("did you mean `{s}`?")),
                None if by_name.is_empty() => {
                    d.with_help("there are no pipelines: add `pipelines/<name>.yaml`")
                }
                None => d.with_help(format!("pipelines are {}", list_names(by_name.keys()))),
            };
            diags.push(d);
        }
    }

    // Step names of every pipeline, for `pipeline.step` references.
    let pipeline_steps: BTreeMap<String, Option<Vec<String>>> = by_name
        .iter()
        .map(|(stem, path)| {
            let steps = std::fs::read_to_string(path)
                .ok()
                .and_then(|text| parse_yaml("", &text).ok())
                .and_then(|root| {
                    root.get("steps")?
                        .as_map()
                        .map(|m| m.iter().map(|(k, _)| k.key_text()).collect())
                });
            ((*stem).to_owned(), steps)
        })
        .collect();

    let mut plans = BTreeMap::new();
    for (stem, path) in by_name {
        if !only.is_empty() && !only.iter().any(|o| o == stem) {
            continue;
        }
        let file = format!("pipelines/{}", file_name(path));
        let Some(text) = read_source(path, &file, &mut diags) else {
            continue;
        };
        let checker = PipelineChecker {
            stem,
            file: &file,
            text: &text,
            catalog,
            config: &config,
            envs: &known_envs,
            environments: &environments,
            contracts: &contracts,
            pipelines: &pipeline_steps,
            diags: Vec::new(),
        };
        let (plan, d) = checker.check();
        diags.extend(d);
        if let Some(plan) = plan {
            plans.insert(stem.to_string(), plan);
        }
        sources.insert(&file, text);
    }

    sort_diagnostics(&mut diags);
    CheckOutput {
        config,
        plans,
        diagnostics: diags,
        sources,
    }
}

/// Sorts diagnostics by file, then position, as `weir check` prints them.
pub fn sort_diagnostics(diags: &mut [Diagnostic]) {
    diags.sort_by(|a, b| {
        let key = |d: &Diagnostic| {
            (
                d.file.clone().unwrap_or_default(),
                d.primary_span().map_or(0, |s| s.offset),
            )
        };
        key(a).cmp(&key(b))
    });
}

struct EnvNames {
    names: Vec<String>,
    files: Vec<(String, PathBuf)>,
}

impl EnvNames {
    fn contains(&self, name: &str) -> bool {
        self.names.iter().any(|n| n == name)
    }
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// `(stem, path)` of every `*.yaml` / `*.yml` file in `root/dir`, sorted by
/// file name; an absent directory has none.
fn list_yaml(root: &Path, dir: &str, diags: &mut Vec<Diagnostic>) -> Vec<(String, PathBuf)> {
    match try_list_yaml(&root.join(dir)) {
        Ok(files) => files,
        Err(source) => {
            diags.push(
                Error::Io {
                    path: dir.to_string(),
                    source,
                }
                .into_diagnostic(),
            );
            Vec::new()
        }
    }
}

fn try_list_yaml(dir: &Path) -> std::io::Result<Vec<(String, PathBuf)>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    for entry in entries {
        let path = entry?.path();
        let is_yaml = matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml")
        );
        if !is_yaml || !path.is_file() {
            continue;
        }
        if let Some(stem) = path.file_stem().and_then(|s| s.to_str()) {
            out.push((stem.to_string(), path.clone()));
        }
    }
    out.sort_by_key(|(_, path)| file_name(path));
    Ok(out)
}

/// The text of a file; a file that cannot be read or is not UTF-8 is a
/// diagnostic.
fn read_source(path: &Path, file: &str, diags: &mut Vec<Diagnostic>) -> Option<String> {
    // std, not fs-err: the error is shown with the project-relative path.
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(source) => {
            diags.push(
                Error::Io {
                    path: file.to_string(),
                    source,
                }
                .into_diagnostic(),
            );
            return None;
        }
    };
    match String::from_utf8(bytes) {
        Ok(text) => Some(text),
        Err(e) => {
            diags.push(
                Diagnostic::error(
                    "unreadable-file",
                    format!(
                        "`{file}` is not UTF-8 text (invalid byte at offset {})",
                        e.utf8_error().valid_up_to()
                    ),
                )
                .in_file(file)
                .with_help("save the file as UTF-8"),
            );
            None
        }
    }
}

fn check_project_file(
    root: &Path,
    sources: &mut SourceMap,
    diags: &mut Vec<Diagnostic>,
) -> ProjectConfig {
    let fallback = ProjectConfig {
        name: root
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "project".to_string()),
        description: None,
        namespace: weir_types::DEFAULT_NAMESPACE.to_string(),
        environment: None,
    };
    let path = root.join("weir.yaml");
    if !path.is_file() {
        diags.push(
            Diagnostic::error(
                "missing-project",
                "this is not a weir project: there is no `weir.yaml` at its root",
            )
            .in_file("weir.yaml")
            .with_help("run `weir init` to create a project, or run weir inside one"),
        );
        return fallback;
    }
    let file = "weir.yaml";
    let Some(text) = read_source(&path, file, diags) else {
        return fallback;
    };
    sources.insert(file, text.as_str());
    let node = match parse_yaml(file, &text) {
        Ok(node) => node,
        Err(d) => {
            diags.extend(d);
            return fallback;
        }
    };
    report_duplicate_keys(&node, None, file, diags);
    match from_node_in::<ProjectSpec>(&node, Some("`weir.yaml`")) {
        Ok(spec) => {
            if !is_name(&spec.namespace)
                && let Some(n) = node.get("namespace")
            {
                diags.push(invalid_name("namespace", &spec.namespace, n.span).in_file(file));
            }
            ProjectConfig {
                name: spec.name,
                description: spec.description,
                namespace: spec.namespace,
                environment: spec.environment,
            }
        }
        Err(d) => {
            diags.extend(d.into_iter().map(|d| d.in_file(file)));
            fallback
        }
    }
}

fn check_environment(name: &str, file: &str, text: &str) -> (Option<Environment>, Vec<Diagnostic>) {
    let mut diags = Vec::new();
    let node = match parse_yaml(file, text) {
        Ok(node) => node,
        Err(d) => return (None, d),
    };
    report_duplicate_keys(&node, None, file, &mut diags);
    match from_node_in::<EnvironmentSpec>(&node, Some(&format!("environment `{name}`"))) {
        Ok(spec) => {
            if let Some(salt) = &spec.hash_salt
                && !spec.secrets.contains(salt)
            {
                let mut d = Diagnostic::error(
                    "unknown-secret",
                    format!("`hash_salt` names secret `{salt}`, which environment `{name}` does not declare"),
                )
                .in_file(file)
                .with_help(format!("add `{salt}` to `secrets:` in `{file}`"));
                if let Some(n) = node.get("hash_salt") {
                    d = d.with_label(n.span, "not in `secrets:`");
                }
                diags.push(d);
            }
            let contracts = spec.contracts.unwrap_or(if name == "dev" {
                crate::ContractsMode::Warn
            } else {
                crate::ContractsMode::Strict
            });
            let env = Environment {
                name: name.to_string(),
                vars: spec.vars.0.into_iter().map(|(k, v)| (k, v.0)).collect(),
                secrets: spec.secrets,
                contracts,
                sample: spec.sample,
                hash_salt: spec.hash_salt,
            };
            (Some(env), diags)
        }
        Err(d) => {
            diags.extend(d.into_iter().map(|d| d.in_file(file)));
            (None, diags)
        }
    }
}

/// Every contract under `schemas/`, by file stem. A file with errors is
/// reported and left out (steps naming it are not reported again).
fn check_contracts(
    root: &Path,
    sources: &mut SourceMap,
    diags: &mut Vec<Diagnostic>,
) -> BTreeMap<String, Option<Contract>> {
    let mut out = BTreeMap::new();
    for (stem, path) in list_yaml(root, "schemas", diags) {
        let file = format!("schemas/{}", file_name(&path));
        let Some(text) = read_source(&path, &file, diags) else {
            out.insert(stem, None);
            continue;
        };
        let contract = check_contract(&stem, &file, &text, diags);
        sources.insert(&file, text);
        out.entry(stem).or_insert(contract);
    }
    out
}

fn check_contract(
    stem: &str,
    file: &str,
    text: &str,
    diags: &mut Vec<Diagnostic>,
) -> Option<Contract> {
    let node = match parse_yaml(file, text) {
        Ok(node) => node,
        Err(d) => {
            diags.extend(d);
            return None;
        }
    };
    let columns_node = node.get("columns");
    report_duplicate_keys(&node, columns_node, file, diags);
    let spec = match from_node_in::<ContractSpec>(&node, Some(&format!("contract `{stem}`"))) {
        Ok(spec) => spec,
        Err(d) => {
            diags.extend(d.into_iter().map(|d| d.in_file(file)));
            return None;
        }
    };
    let mut ok = true;
    if spec.columns.0.is_empty() {
        let span = columns_node.map_or(node.span, |n| n.span);
        diags.push(
            Diagnostic::error("invalid-value", format!("contract `{stem}` has no columns"))
                .in_file(file)
                .with_label(span, "no columns here")
                .with_help("list the columns, e.g. `columns: { id: { type: int64 } }`"),
        );
        ok = false;
    }
    let mut columns = Vec::new();
    for (name, column) in spec.columns.0 {
        let column_node = columns_node.and_then(|n| n.get(&name));
        for (key, value) in [("min", &column.min), ("max", &column.max)] {
            if value.is_some() && !column.ty.is_ordered() {
                let span = column_node
                    .and_then(|n| n.get(key))
                    .map_or(node.span, |n| n.span);
                diags.push(
                    Diagnostic::error(
                        "invalid-value",
                        format!(
                            "column `{name}` of type `{}` cannot have a `{key}`",
                            column.ty
                        ),
                    )
                    .in_file(file)
                    .with_label(span, "not comparable")
                    .with_help("`min` and `max` apply to numbers, strings, dates and timestamps"),
                );
                ok = false;
            }
        }
        columns.push(ColumnContract {
            name,
            ty: column.ty,
            nullable: column.nullable,
            unique: column.unique,
            min: column.min,
            max: column.max,
            values: column.values,
            pii: column.pii,
        });
    }
    ok.then(|| Contract {
        name: stem.to_owned(),
        file: file.to_owned(),
        columns,
    })
}

/// The stem a step's `schema:` names: `orders`, `schemas/orders.yaml` and
/// `schemas/orders.yml` all name `schemas/orders.yaml`.
fn schema_stem(written: &str) -> &str {
    let s = written.trim();
    let s = s.strip_prefix("./").unwrap_or(s);
    let s = s.strip_prefix("schemas/").unwrap_or(s);
    s.strip_suffix(".yaml")
        .or_else(|| s.strip_suffix(".yml"))
        .unwrap_or(s)
}

/// Letters, digits and `_`, not starting with a digit.
pub(crate) fn is_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn invalid_name(what: &str, name: &str, span: Span) -> Diagnostic {
    Diagnostic::error(
        "invalid-name",
        format!("{what} name `{name}` is not a valid name"),
    )
    .with_label(span, "invalid name")
    .with_help(format!(
        "use letters, digits and `_`, not starting with a digit, e.g. `{}`",
        suggest_name(name)
    ))
}

fn suggest_name(name: &str) -> String {
    let mut out: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    out
}

/// Every key that appears twice in one map, anywhere in the document. Keys
/// of `steps_map` are reported as `duplicate-step`.
fn report_duplicate_keys(
    node: &Node,
    steps_map: Option<&Node>,
    file: &str,
    diags: &mut Vec<Diagnostic>,
) {
    match &node.value {
        NodeValue::Map(entries) => {
            let is_steps = steps_map.is_some_and(|s| std::ptr::eq(s, node));
            let mut first: BTreeMap<String, Span> = BTreeMap::new();
            for (k, v) in entries {
                let text = k.key_text();
                if let Some(first_span) = first.get(&text) {
                    let d = if is_steps {
                        Diagnostic::error(
                            "duplicate-step",
                            format!("step `{text}` is defined twice"),
                        )
                        .with_help("rename one of the steps, or merge them")
                    } else {
                        Diagnostic::error(
                            "duplicate-key",
                            format!("key `{text}` appears twice in the same map"),
                        )
                        .with_help("remove one of them; YAML keeps only one value per key")
                    };
                    diags.push(
                        d.with_label(k.span, "defined again here")
                            .with_label(*first_span, "first defined here")
                            .in_file(file),
                    );
                } else {
                    first.insert(text, k.span);
                }
                report_duplicate_keys(v, steps_map, file, diags);
            }
        }
        NodeValue::Seq(items) => {
            for item in items {
                report_duplicate_keys(item, steps_map, file, diags);
            }
        }
        _ => {}
    }
}

struct PipelineChecker<'a> {
    stem: &'a str,
    file: &'a str,
    text: &'a str,
    catalog: &'a dyn ActionCatalog,
    config: &'a ProjectConfig,
    envs: &'a EnvNames,
    environments: &'a BTreeMap<String, Environment>,
    contracts: &'a BTreeMap<String, Option<Contract>>,
    /// Every pipeline of the project with its step names (`None`: the file
    /// does not parse).
    pipelines: &'a BTreeMap<String, Option<Vec<String>>>,
    diags: Vec<Diagnostic>,
}

/// One step as validation sees it.
struct StepCheck<'n> {
    name: String,
    spec: Option<StepSpec>,
    action: Option<(String, &'n Node)>,
    /// Dependencies with where each is named: `needs:` entries, then those
    /// the action reported.
    deps: Vec<(String, Span)>,
    data: StepData,
    /// Datasets of other pipelines it reads.
    reads: Vec<String>,
    /// The step's map.
    node: &'n Node,
}

impl<'a> PipelineChecker<'a> {
    fn error(&mut self, d: Diagnostic) {
        self.diags.push(d.in_file(self.file));
    }

    fn check(mut self) -> (Option<Plan>, Vec<Diagnostic>) {
        let plan = self.check_inner();
        let has_errors = self.diags.iter().any(Diagnostic::is_error);
        (plan.filter(|_| !has_errors), self.diags)
    }

    fn check_inner(&mut self) -> Option<Plan> {
        if !is_name(self.stem) {
            self.error(
                Diagnostic::error(
                    "invalid-name",
                    format!("pipeline name `{}` (from the file name) is not a valid name", self.stem),
                )
                .with_help(format!(
                    "rename the file to `pipelines/{}.yaml`: letters, digits and `_`, not starting with a digit",
                    suggest_name(self.stem)
                )),
            );
        }
        let root = match parse_yaml(self.file, self.text) {
            Ok(root) => root,
            Err(d) => {
                self.diags.extend(d);
                return None;
            }
        };
        if root.as_map().is_none() {
            self.error(
                Diagnostic::error(
                    "invalid-type",
                    format!("a pipeline file must be a map, found {}", root.describe()),
                )
                .with_label(root.span, "expected a map")
                .with_help("start with `name:` and `steps:`; `weir schema` prints the format"),
            );
            return None;
        }
        let steps_node = root.get("steps");
        let mut dups = Vec::new();
        report_duplicate_keys(&root, steps_node, self.file, &mut dups);
        self.diags.extend(dups);

        let what = format!("pipeline `{}`", self.stem);
        let header = match from_node_in::<PipelineSpec>(&root, Some(&what)) {
            Ok(spec) => Some(spec),
            Err(d) => {
                let d = d
                    .into_iter()
                    .map(|d| self.param_type_code(d))
                    .collect::<Vec<_>>();
                for d in d {
                    self.error(d);
                }
                None
            }
        };
        if let Some(h) = &header {
            self.check_header(&root, h);
        }

        let Some(steps_node) = steps_node else {
            let span = root
                .as_map()
                .and_then(|m| m.first())
                .map_or(root.span, |(k, _)| k.span);
            self.error(
                Diagnostic::error("missing-key", format!("missing key `steps` in {what}"))
                    .with_label(span, "`steps` is required in this map")
                    .with_help(
                        "add `steps:` with at least one step, e.g. `hello: { shell: echo hi }`",
                    ),
            );
            return None;
        };
        let Some(entries) = steps_node.as_map() else {
            if steps_node.value == NodeValue::Null {
                self.no_steps(steps_node.span);
            } else {
                self.error(
                    Diagnostic::error(
                        "invalid-type",
                        format!(
                            "`steps` of {what}: expected a map, found {}",
                            steps_node.describe()
                        ),
                    )
                    .with_label(steps_node.span, "expected a map of step name to step"),
                );
            }
            return None;
        };
        if entries.is_empty() {
            self.no_steps(steps_node.span);
            return None;
        }

        let mut steps: Vec<StepCheck<'_>> = Vec::new();
        let mut seen = BTreeSet::new();
        for (key, value) in entries {
            let name = key.key_text();
            if !seen.insert(name.clone()) {
                continue; // reported as duplicate-step
            }
            if key.as_str().is_none() || !is_name(&name) {
                self.error(invalid_name("step", &name, key.span));
            }
            steps.push(self.check_step(name, key, value));
        }

        let names: Vec<String> = steps.iter().map(|s| s.name.clone()).collect();
        let index: BTreeMap<&str, usize> = names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.as_str(), i))
            .collect();
        let mut deps: Vec<Vec<usize>> = vec![Vec::new(); steps.len()];
        let mut edge_spans: BTreeMap<(usize, usize), Span> = BTreeMap::new();
        for (i, step) in steps.iter().enumerate() {
            for (dep, span) in &step.deps {
                match index.get(dep.as_str()) {
                    Some(&j) => {
                        if !deps[i].contains(&j) {
                            deps[i].push(j);
                        }
                        edge_spans.entry((i, j)).or_insert(*span);
                    }
                    None => {
                        let others = names
                            .iter()
                            .filter(|n| **n != step.name)
                            .map(String::as_str);
                        let help = match did_you_mean(dep, others) {
                            Some(s) => format!("did you mean `{s}`?"),
                            None => {
                                format!("steps of this pipeline are {}", list_names(names.iter()))
                            }
                        };
                        self.error(
                            Diagnostic::error(
                                "unknown-step",
                                format!("step `{}` depends on `{dep}`, which is not a step of pipeline `{}`", step.name, self.stem),
                            )
                            .with_label(*span, "no such step")
                            .with_help(help),
                        );
                    }
                }
            }
        }

        let order = match topological_order(&deps) {
            Ok(order) => Some(order),
            Err(cycles) => {
                for cycle in cycles {
                    let path: Vec<String> =
                        cycle.iter().map(|i| format!("`{}`", names[*i])).collect();
                    let mut d = Diagnostic::error(
                        "dependency-cycle",
                        format!(
                            "steps depend on each other in a cycle: {}",
                            path.join(" → ")
                        ),
                    )
                    .with_help(
                        "remove one of these dependencies (`needs:`, inputs or tables read)",
                    );
                    for pair in cycle.windows(2) {
                        if let Some(span) = edge_spans.get(&(pair[0], pair[1])) {
                            d = d.with_label(
                                *span,
                                format!("`{}` depends on `{}`", names[pair[0]], names[pair[1]]),
                            );
                        }
                    }
                    self.error(d);
                }
                None
            }
        };

        if let Some(h) = &header {
            for (i, step) in steps.iter().enumerate() {
                let direct: Vec<&str> = deps[i].iter().map(|j| names[*j].as_str()).collect();
                self.check_templates(h, step, &direct, &names);
                self.check_hash_salt(h, step, step.node);
            }
        }

        let header = header?;
        let order = order?;
        if self.diags.iter().any(Diagnostic::is_error) {
            return None;
        }
        self.build_plan(header, steps, &deps, &order)
    }

    fn no_steps(&mut self, span: Span) {
        self.error(
            Diagnostic::error("no-steps", format!("pipeline `{}` has no steps", self.stem))
                .with_label(span, "no steps here")
                .with_help("add a step, e.g. `hello: { shell: echo hi }`"),
        );
    }

    /// An unknown `type:` of a param is `invalid-param-type`, not the
    /// generic `invalid-value`.
    fn param_type_code(&self, mut d: Diagnostic) -> Diagnostic {
        if d.code == "invalid-value"
            && d.message.contains("in `params.")
            && d.message.contains(".type`")
        {
            d.code = "invalid-param-type".to_string();
        }
        d
    }

    fn check_header(&mut self, root: &Node, h: &PipelineSpec) {
        if let Some(name) = &h.name
            && name != self.stem
        {
            let span = root.get("name").map_or(root.span, |n| n.span);
            self.error(
                Diagnostic::error(
                    "pipeline-name-mismatch",
                    format!("pipeline `name: {name}` differs from its file name `{}`", self.file),
                )
                .with_label(span, format!("the file says `{}`", self.stem))
                .with_help(format!(
                    "rename the file to `pipelines/{name}.yaml`, or write `name: {}` (or drop `name:`)",
                    self.stem
                )),
            );
        }
        if let Some(params) = root.get("params").and_then(Node::as_map) {
            for (key, value) in params {
                let name = key.key_text();
                if !is_name(&name) {
                    self.error(invalid_name("param", &name, key.span));
                }
                let Some(spec) = h.params.get(&name) else {
                    continue;
                };
                if let (Some(default), Some(default_node)) = (&spec.default, value.get("default"))
                    && !matches_type(spec.ty, default)
                {
                    let hint = if spec.ty == crate::ParamType::String {
                        format!(
                            "quote it: `default: \"{}\"`",
                            default_node.to_json().to_string().trim_matches('"')
                        )
                    } else {
                        format!("write {} or change `type:`", type_example(spec.ty))
                    };
                    self.error(
                        Diagnostic::error(
                            "invalid-default",
                            format!(
                                "default of param `{name}` is {}, but its type is `{}`",
                                default_node.describe(),
                                spec.ty
                            ),
                        )
                        .with_label(default_node.span, format!("not {}", type_article(spec.ty)))
                        .with_help(hint),
                    );
                }
            }
        }
        if let Some(triggers) = root.get("triggers").and_then(|t| match &t.value {
            NodeValue::Seq(items) => Some(items),
            _ => None,
        }) {
            for (trigger, node) in h.triggers.iter().zip(triggers) {
                self.check_trigger(trigger, node);
            }
        }
        if let (Some(t), Some(node)) = (&h.timeout, root.get("timeout")) {
            self.duration(t, node);
        }
        if let (Some(r), Some(node)) = (&h.retries, root.get("retries")) {
            self.retries(r, node);
        }
        if let (Some(env), Some(node)) = (&h.environment, root.get("environment")) {
            self.environment(env, node);
        }
    }

    fn check_trigger(&mut self, trigger: &TriggerSpec, node: &Node) {
        let inner = node.as_map().and_then(|m| m.first()).map(|(_, v)| v);
        match trigger {
            TriggerSpec::Cron(cron) => {
                let expr_node = inner.map(|v| v.get("expr").unwrap_or(v)).unwrap_or(node);
                let parser = croner::parser::CronParser::builder()
                    .seconds(croner::parser::Seconds::Optional)
                    .build();
                if let Err(e) = parser.parse(&cron.expr) {
                    self.error(
                        Diagnostic::error(
                            "invalid-cron",
                            format!("invalid cron expression `{}`: {e}", cron.expr),
                        )
                        .with_label(expr_node.span, "invalid cron expression")
                        .with_help("write 5 fields, minute hour day-of-month month day-of-week (e.g. `0 3 * * *`, daily at 03:00), or 6 with seconds first"),
                    );
                }
            }
            TriggerSpec::Dataset(name) => {
                let parts: Vec<&str> = name.split('.').collect();
                if !(1..=3).contains(&parts.len()) || !parts.iter().all(|p| is_name(p)) {
                    self.error(
                        Diagnostic::error("invalid-name", format!("`{name}` is not a dataset name"))
                            .with_label(inner.map_or(node.span, |v| v.span), "invalid dataset name")
                            .with_help("write `<pipeline>.<step>`, or `<namespace>.<pipeline>.<step>` for another namespace"),
                    );
                }
            }
            TriggerSpec::File(f) => {
                if f.path.trim().is_empty() {
                    let span = inner
                        .and_then(|v| v.get("path"))
                        .map_or(node.span, |v| v.span);
                    self.error(
                        Diagnostic::error("invalid-value", "`file:` trigger has an empty `path`")
                            .with_label(span, "empty path")
                            .with_help(
                                "write a glob relative to the project, e.g. `landing/orders/*.csv`",
                            ),
                    );
                }
            }
            TriggerSpec::Webhook(_) => {}
        }
    }

    /// Longer timeouts or backoffs are mistakes, and unbounded ones overflow
    /// the clocks they are added to.
    fn duration(&mut self, d: &DurationSpec, node: &Node) -> Option<Duration> {
        match humantime::parse_duration(d.0.trim()) {
            Ok(v) if v > MAX_DURATION => {
                self.error(
                    Diagnostic::error(
                        "invalid-duration",
                        format!("duration `{}` is longer than the limit of 366 days", d.0),
                    )
                    .with_label(node.span, "too long")
                    .with_help(
                        "timeouts and backoffs are at most `366d`; leave `timeout:` out for none",
                    ),
                );
                None
            }
            Ok(v) => Some(v),
            Err(e) => {
                self.error(
                    Diagnostic::error(
                        "invalid-duration",
                        format!("invalid duration `{}`: {e}", d.0),
                    )
                    .with_label(node.span, "invalid duration")
                    .with_help("write a number with a unit, e.g. `30s`, `5m`, `1h30m` or `500ms`"),
                );
                None
            }
        }
    }

    fn retries(&mut self, r: &RetriesSpec, node: &Node) -> Option<Duration> {
        match (r.backoff(), node.get("backoff")) {
            (Some(b), Some(n)) => self.duration(b, n),
            _ => None,
        }
    }

    fn environment(&mut self, name: &str, node: &Node) {
        if !self.envs.contains(name) {
            let d = unknown_environment(name, &self.envs.files)
                .with_label(node.span, "no such environment");
            self.error(d);
        }
    }

    fn check_step<'n>(&mut self, name: String, key: &'n Node, node: &'n Node) -> StepCheck<'n> {
        let mut step = StepCheck {
            name,
            spec: None,
            action: None,
            deps: Vec::new(),
            data: StepData::default(),
            reads: Vec::new(),
            node,
        };
        let kinds = self.catalog.kinds();
        let Some(entries) = node.as_map() else {
            self.error(
                Diagnostic::error(
                    "invalid-type",
                    format!(
                        "step `{}` must be a map, found {}",
                        step.name,
                        node.describe()
                    ),
                )
                .with_label(node.span, "expected a map")
                .with_help(format!(
                    "a step has one action key, e.g. `{}: {{ {}: ... }}`",
                    step.name,
                    kinds.first().copied().unwrap_or("shell")
                )),
            );
            return step;
        };
        let common = struct_fields::<StepSpec>();
        let mut actions: Vec<&(Node, Node)> = Vec::new();
        let mut rest: Vec<(Node, Node)> = Vec::new();
        for entry in entries {
            let k = entry.0.key_text();
            if kinds.contains(&k.as_str()) {
                actions.push(entry);
            } else if common.contains(&k.as_str()) {
                rest.push(entry.clone());
            } else {
                let candidates = common.iter().chain(kinds.iter()).copied();
                let help = match did_you_mean(&k, candidates) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => format!(
                        "a step takes one action key ({}) and {}",
                        list_names(kinds.iter()),
                        list_names(common.iter())
                    ),
                };
                self.error(
                    Diagnostic::error(
                        "unknown-key",
                        format!("unknown key `{k}` in step `{}`", step.name),
                    )
                    .with_label(entry.0.span, "unknown key")
                    .with_help(help),
                );
            }
        }
        match actions.as_slice() {
            [] => self.error(
                Diagnostic::error("no-action", format!("step `{}` has no action", step.name))
                    .with_label(key.span, "no action key in this step")
                    .with_help(format!(
                        "add exactly one of {}, e.g. `shell: echo hi`",
                        list_names(kinds.iter())
                    )),
            ),
            [(k, v)] => step.action = Some((k.key_text(), v)),
            [first, more @ ..] => {
                let mut d = Diagnostic::error(
                    "multiple-actions",
                    format!(
                        "step `{}` has {} actions: {}",
                        step.name,
                        actions.len(),
                        list_names(actions.iter().map(|(k, _)| k.key_text()))
                    ),
                )
                .with_label(more[0].0.span, "second action");
                d = d.with_label(first.0.span, "first action");
                for (k, _) in &more[1..] {
                    d = d.with_label(k.span, "another action");
                }
                self.error(d.with_help("split them into separate steps, joined with `needs:`"));
                step.action = Some((first.0.key_text(), &first.1));
            }
        }

        let common_node = Node {
            span: node.span,
            value: NodeValue::Map(rest),
        };
        match from_node_in::<StepSpec>(&common_node, Some(&format!("step `{}`", step.name))) {
            Ok(spec) => {
                if let Some(needs) = node.get("needs").and_then(|n| match &n.value {
                    NodeValue::Seq(items) => Some(items),
                    _ => None,
                }) {
                    for item in needs {
                        if let Some(s) = item.as_str() {
                            step.deps.push((s.to_string(), item.span));
                        }
                    }
                }
                if let (Some(t), Some(n)) = (&spec.timeout, node.get("timeout")) {
                    self.duration(t, n);
                }
                if let (Some(r), Some(n)) = (&spec.retries, node.get("retries")) {
                    self.retries(r, n);
                }
                if let (Some(e), Some(n)) = (&spec.environment, node.get("environment")) {
                    self.environment(e, n);
                }
                step.data = self.step_data(
                    &step.name,
                    step.action.as_ref().map(|(k, _)| k.as_str()),
                    &spec,
                    node,
                );
                step.spec = Some(spec);
            }
            Err(d) => {
                for d in d {
                    self.error(d);
                }
            }
        }

        if let Some((kind, value)) = &step.action {
            match self.catalog.check(kind, value) {
                Ok(check) => {
                    // A kind points a dependency at its whole spec; the name
                    // itself (a table in a query) is more helpful.
                    for (dep, span) in check.depends_on {
                        let span = self.find_in(span, &dep, true).unwrap_or(span);
                        step.deps.push((dep, span));
                    }
                    for (dataset, span) in check.reads {
                        let span = self.find_in(span, &dataset, true).unwrap_or(span);
                        self.external_read(&mut step, dataset, span);
                    }
                }
                Err(ds) => {
                    for mut d in ds {
                        if d.labels.is_empty() {
                            d = d.with_span(value.span);
                        }
                        self.error(d);
                    }
                }
            }
        }
        step
    }

    /// A dataset of another pipeline read by a step: checked against the
    /// project's pipelines (another namespace's cannot be), or turned into
    /// a dependency when it names this pipeline.
    fn external_read(&mut self, step: &mut StepCheck<'_>, dataset: String, span: Span) {
        let parts: Vec<&str> = dataset.split('.').collect();
        let (pipeline, name) = match parts.as_slice() {
            [p, s] => (*p, *s),
            [ns, p, s] if *ns == self.config.namespace => (*p, *s),
            _ => {
                step.reads.push(dataset);
                return;
            }
        };
        if pipeline == self.stem {
            step.deps.push((name.to_owned(), span));
            return;
        }
        match self.pipelines.get(pipeline) {
            None => {
                let help = match did_you_mean(pipeline, self.pipelines.keys().map(String::as_str)) {
                    Some(s) => format!("did you mean `{s}.{name}`?"),
                    None => format!(
                        "`<pipeline>.<step>` reads another pipeline's dataset; pipelines are {}",
                        list_names(self.pipelines.keys())
                    ),
                };
                self.error(
                    Diagnostic::error(
                        "sql-unknown-table",
                        format!(
                            "step `{}` reads `{dataset}`, but there is no pipeline `{pipeline}`",
                            step.name
                        ),
                    )
                    .with_label(span, "no such pipeline")
                    .with_help(help),
                );
            }
            Some(Some(steps)) if !steps.iter().any(|s| s == name) => {
                let help = match did_you_mean(name, steps.iter().map(String::as_str)) {
                    Some(s) => format!("did you mean `{pipeline}.{s}`?"),
                    None => format!("steps of `{pipeline}` are {}", list_names(steps.iter())),
                };
                self.error(
                    Diagnostic::error(
                        "sql-unknown-table",
                        format!("step `{}` reads `{dataset}`, but pipeline `{pipeline}` has no step `{name}`", step.name),
                    )
                    .with_label(span, "no such step")
                    .with_help(help),
                );
            }
            // Known, or a pipeline file too broken to tell (reported there).
            Some(_) => step.reads.push(format!("{pipeline}.{name}")),
        }
    }

    /// The data keys of a step (`schema:`, `checks:`, `anonymize:`,
    /// `persist:`), resolved; reported when the step makes no dataset.
    fn step_data(
        &mut self,
        step: &str,
        kind: Option<&str>,
        spec: &StepSpec,
        node: &Node,
    ) -> StepData {
        let mut data = StepData {
            contract: None,
            checks: spec.checks.clone(),
            anonymize: spec.anonymize.0.clone(),
            persist: spec.persist.unwrap_or(true),
        };
        if let Some(kind) = kind
            && !self.catalog.produces_dataset(kind)
        {
            for key in ["schema", "checks", "anonymize", "persist"] {
                if let Some((k, _)) = node
                    .as_map()
                    .and_then(|m| m.iter().find(|(k, _)| k.key_text() == key))
                {
                    let data_kinds: Vec<&str> = self
                        .catalog
                        .kinds()
                        .into_iter()
                        .filter(|k| self.catalog.produces_dataset(k))
                        .collect();
                    self.error(
                        Diagnostic::error(
                            "not-a-data-step",
                            format!("`{key}` applies to steps that produce a dataset; step `{step}` is a `{kind}` step, which does not"),
                        )
                        .with_label(k.span, "needs a dataset")
                        .with_help(if data_kinds.is_empty() {
                            format!("remove `{key}`")
                        } else {
                            format!("remove `{key}`, or put it on the step that produces the data ({} steps)", list_names(data_kinds.iter()))
                        }),
                    );
                }
            }
            return data;
        }
        if spec.persist == Some(false) {
            let persist_span = node.get("persist").map_or(node.span, |n| n.span);
            if let Some(kind) = kind
                && !self.catalog.deferrable(kind)
            {
                self.error(
                    Diagnostic::error(
                        "invalid-value",
                        format!("step `{step}` is a `{kind}` step, which cannot be left unstored"),
                    )
                    .with_label(persist_span, "not for this kind")
                    .with_help("`persist: false` applies to `sql` steps, which then run inside the queries of the steps reading them"),
                );
            }
            for key in ["schema", "checks", "anonymize"] {
                let set = match key {
                    "schema" => spec.schema.is_some(),
                    "checks" => !spec.checks.is_empty(),
                    _ => !spec.anonymize.0.is_empty(),
                };
                if set {
                    self.error(
                        Diagnostic::error(
                            "invalid-value",
                            format!("step `{step}` has `persist: false` and `{key}`: nothing is stored to apply it to"),
                        )
                        .with_label(persist_span, "not stored")
                        .with_help(format!("remove `persist: false`, or move `{key}` to a step that reads this one")),
                    );
                }
            }
        }
        if let Some(written) = &spec.schema {
            let stem = schema_stem(written);
            match self.contracts.get(stem) {
                Some(contract) => data.contract = contract.clone(),
                None => {
                    let span = node.get("schema").map_or(node.span, |n| n.span);
                    let help = match did_you_mean(stem, self.contracts.keys().map(String::as_str)) {
                        Some(s) => format!("did you mean `{s}`?"),
                        None if self.contracts.is_empty() => format!(
                            "add `schemas/{stem}.yaml` with the columns, e.g. `columns: {{ id: {{ type: int64 }} }}`"
                        ),
                        None => format!("contracts are {}", list_names(self.contracts.keys())),
                    };
                    self.error(
                        Diagnostic::error(
                            "unknown-schema",
                            format!("step `{step}` names contract `{written}`, but there is no `schemas/{stem}.yaml`"),
                        )
                        .with_label(span, "no such contract")
                        .with_help(help),
                    );
                }
            }
        }
        data
    }

    /// `anonymize: hash` needs the step's environment to name a salt.
    fn check_hash_salt(&mut self, h: &PipelineSpec, step: &StepCheck<'_>, node: &Node) {
        let Some((column, _)) = step
            .data
            .anonymize
            .iter()
            .find(|(_, m)| *m == AnonymizeSpec::Hash)
        else {
            return;
        };
        let env_name = self.step_env_name(h, step);
        let env = env_name.as_ref().and_then(|n| self.environments.get(n));
        if env_name.as_ref().is_some_and(|n| !self.envs.contains(n)) {
            return; // reported where it is named
        }
        if env.is_some_and(|e| e.hash_salt.is_some()) {
            return;
        }
        let span = node
            .get("anonymize")
            .and_then(|a| a.get(column))
            .map_or(node.span, |n| n.span);
        let help = match &env_name {
            Some(n) => format!("add `hash_salt: SALT_SECRET` (and `secrets: [SALT_SECRET]`) to `environments/{n}.yaml`"),
            None => "run the step in an environment (`environment:`) whose file sets `hash_salt:` to one of its secrets".to_owned(),
        };
        self.error(
            Diagnostic::error(
                "no-hash-salt",
                format!(
                    "step `{}` hashes column `{column}`, but its environment has no `hash_salt`",
                    step.name
                ),
            )
            .with_label(span, "needs a salt")
            .with_help(help),
        );
    }

    fn step_env_name(&self, h: &PipelineSpec, step: &StepCheck<'_>) -> Option<String> {
        step.spec
            .as_ref()
            .and_then(|s| s.environment.clone())
            .or_else(|| h.environment.clone())
            .or_else(|| self.config.environment.clone())
    }

    /// Every string in the step's action spec, checked as a template.
    fn check_templates(
        &mut self,
        h: &PipelineSpec,
        step: &StepCheck<'_>,
        direct: &[&str],
        names: &[String],
    ) {
        let Some((_, value)) = step.action else {
            return;
        };
        let env_name = self.step_env_name(h, step);
        let scope = Scope {
            step: &step.name,
            params: h.params.keys().collect(),
            environment: match &env_name {
                // An unknown environment is reported once where it is named.
                Some(n) if !self.envs.contains(n) => EnvScope::Unknown,
                Some(n) => match self.environments.get(n) {
                    Some(env) => EnvScope::Known(env),
                    None => EnvScope::Unknown,
                },
                None => EnvScope::None,
            },
            direct,
            names,
        };
        let env = template::environment();
        let mut strings = Vec::new();
        collect_strings(value, &mut strings);
        for node in strings {
            let Some(s) = node.as_str() else { continue };
            if !template::is_template(s) {
                continue;
            }
            match template::scan(&env, s) {
                TemplateScan::Syntax(message, range) => {
                    let snippet = range
                        .and_then(|r| s.get(r))
                        .filter(|t| !t.trim().is_empty())
                        .map(str::to_string);
                    let span = snippet
                        .and_then(|t| self.find_in(node.span, &t, false))
                        .unwrap_or(node.span);
                    self.error(
                        Diagnostic::error("template-syntax", format!("template in step `{}` does not parse: {message}", step.name))
                            .with_label(span, message)
                            .with_help("templates use `{{ expression }}` and `{% statement %}`; for a literal `{{` write `{{ '{{' }}`"),
                    );
                }
                TemplateScan::Variables(vars) => {
                    for var in vars {
                        if let Err((what, help)) = scope.check(&var) {
                            let span = self.find_in(node.span, &var, true).unwrap_or(node.span);
                            self.error(
                                Diagnostic::error("undefined-variable", what)
                                    .with_label(span, "not defined")
                                    .with_help(help),
                            );
                        }
                    }
                }
            }
        }
    }

    /// Where `needle` is written inside the source text of a string node
    /// (plain, quoted or block scalar alike), as a whole name when `word`.
    fn find_in(&self, span: Span, needle: &str, word: bool) -> Option<Span> {
        let end = (span.offset + span.len).min(self.text.len());
        let hay = self.text.get(span.offset..end)?;
        let is_ident = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '.';
        let mut from = 0;
        while let Some(pos) = hay[from..].find(needle) {
            let at = from + pos;
            let before = hay[..at].chars().next_back();
            let after = hay[at + needle.len()..].chars().next();
            if !word || (!before.is_some_and(is_ident) && !after.is_some_and(is_ident)) {
                return Some(crate::node::span_in(
                    self.text,
                    span.offset + at,
                    needle.len(),
                ));
            }
            from = at + needle.len().max(1);
        }
        None
    }

    fn build_plan(
        &mut self,
        h: PipelineSpec,
        steps: Vec<StepCheck<'_>>,
        deps: &[Vec<usize>],
        order: &[usize],
    ) -> Option<Plan> {
        let parse =
            |d: Option<&DurationSpec>| d.and_then(|d| humantime::parse_duration(d.0.trim()).ok());
        let pipeline_timeout = parse(h.timeout.as_ref());
        let pipeline_backoff = parse(h.retries.as_ref().and_then(RetriesSpec::backoff));
        let params = h
            .params
            .0
            .iter()
            .map(|(name, p)| ParamDecl {
                name: name.clone(),
                ty: p.ty,
                default: p.default.clone(),
                description: p.description.clone(),
            })
            .collect();
        let names: Vec<&str> = steps.iter().map(|s| s.name.as_str()).collect();
        let mut plan_steps = Vec::with_capacity(steps.len());
        for &i in order {
            let step = &steps[i];
            let spec = step.spec.clone()?;
            let (kind, value) = step.action.clone()?;
            let retries_spec = spec.retries.as_ref().or(h.retries.as_ref());
            let retries = match retries_spec {
                None => RetryPolicy::default(),
                Some(r) => RetryPolicy {
                    max: r.max(),
                    backoff: parse(spec.retries.as_ref().and_then(RetriesSpec::backoff))
                        .or(pipeline_backoff)
                        .unwrap_or(RetryPolicy::default().backoff),
                },
            };
            let mut depends_on: Vec<String> = Vec::new();
            for (dep, _) in &step.deps {
                if !depends_on.contains(dep) && deps[i].iter().any(|j| names[*j] == dep) {
                    depends_on.push(dep.clone());
                }
            }
            plan_steps.push(Step {
                name: step.name.clone(),
                kind,
                spec: value.to_json(),
                depends_on,
                retries,
                timeout: parse(spec.timeout.as_ref()).or(pipeline_timeout),
                environment: spec.environment.clone().or_else(|| h.environment.clone()),
                data: step.data.clone(),
                reads: step.reads.clone(),
            });
        }
        Some(Plan {
            pipeline: self.stem.to_string(),
            description: h.description,
            file: self.file.to_string(),
            params,
            steps: plan_steps,
        })
    }
}

fn type_article(ty: crate::ParamType) -> &'static str {
    match ty {
        crate::ParamType::String => "a string",
        crate::ParamType::Int => "an integer",
        crate::ParamType::Float => "a number",
        crate::ParamType::Bool => "a boolean",
    }
}

fn type_example(ty: crate::ParamType) -> &'static str {
    match ty {
        crate::ParamType::String => "`\"text\"`",
        crate::ParamType::Int => "an integer such as `10`",
        crate::ParamType::Float => "a number such as `0.5`",
        crate::ParamType::Bool => "`true` or `false`",
    }
}

fn collect_strings<'n>(node: &'n Node, out: &mut Vec<&'n Node>) {
    match &node.value {
        NodeValue::String(_) => out.push(node),
        NodeValue::Seq(items) => {
            for item in items {
                collect_strings(item, out);
            }
        }
        NodeValue::Map(entries) => {
            for (_, v) in entries {
                collect_strings(v, out);
            }
        }
        _ => {}
    }
}

enum EnvScope<'e> {
    /// No environment applies: no `env.vars` nor `secrets`.
    None,
    /// The environment is missing or invalid, which is reported elsewhere;
    /// its names are not checked.
    Unknown,
    Known(&'e Environment),
}

/// What a template of one step may read.
struct Scope<'s> {
    step: &'s str,
    params: Vec<&'s str>,
    environment: EnvScope<'s>,
    /// Steps this one depends on directly.
    direct: &'s [&'s str],
    names: &'s [String],
}

const ROOTS: &[&str] = &["params", "env", "secrets", "run", "trigger", "steps"];

impl Scope<'_> {
    /// `Err((what is undefined, help))` for a dotted variable path.
    fn check(&self, path: &str) -> Result<(), (String, String)> {
        let parts: Vec<&str> = path.split('.').collect();
        let (root, rest) = match parts.as_slice() {
            [root, rest @ ..] => (*root, rest),
            [] => return Ok(()),
        };
        let undefined = |p: &str| format!("`{p}` is not defined in step `{}`", self.step);
        match (root, rest) {
            (_, []) if ROOTS.contains(&root) => Ok(()),
            ("params", [name, ..]) => {
                if self.params.contains(name) {
                    return Ok(());
                }
                let help = match did_you_mean(name, self.params.iter().copied()) {
                    Some(s) => format!("did you mean `params.{s}`?"),
                    None if self.params.is_empty() => "the pipeline declares no params; declare it under `params:`".to_string(),
                    None => format!("declared params are {}; declare it under `params:`", list_names(&self.params)),
                };
                Err((undefined(&format!("params.{name}")), help))
            }
            ("env", ["vars"]) => Ok(()),
            ("env", ["vars", var, ..]) => match &self.environment {
                EnvScope::Unknown => Ok(()),
                EnvScope::Known(env) if env.vars.contains_key(*var) => Ok(()),
                EnvScope::Known(env) => {
                    let help = match did_you_mean(var, env.vars.keys().map(String::as_str)) {
                        Some(s) => format!("did you mean `env.vars.{s}`?"),
                        None => format!(
                            "environment `{}` defines {}; add it under `vars:` in `environments/{}.yaml`",
                            env.name,
                            list_names(env.vars.keys()),
                            env.name
                        ),
                    };
                    Err((undefined(&format!("env.vars.{var}")), help))
                }
                EnvScope::None => Err((
                    undefined(&format!("env.vars.{var}")),
                    "no environment applies to this step: set `environment:` in `weir.yaml`, the pipeline or the step".to_string(),
                )),
            },
            ("env", [other, ..]) => Err((
                undefined(&format!("env.{other}")),
                "environment variables are read as `env.vars.<name>`".to_string(),
            )),
            ("secrets", [name, ..]) => match &self.environment {
                EnvScope::Unknown => Ok(()),
                EnvScope::Known(env) if env.secrets.iter().any(|s| s == name) => Ok(()),
                EnvScope::Known(env) => {
                    let help = match did_you_mean(name, env.secrets.iter().map(String::as_str)) {
                        Some(s) => format!("did you mean `secrets.{s}`?"),
                        None => format!(
                            "environment `{}` declares {}; add it to `secrets:` in `environments/{}.yaml`",
                            env.name,
                            list_names(&env.secrets),
                            env.name
                        ),
                    };
                    Err((undefined(&format!("secrets.{name}")), help))
                }
                EnvScope::None => Err((
                    undefined(&format!("secrets.{name}")),
                    "no environment applies to this step: secrets are declared by an environment's `secrets:`".to_string(),
                )),
            },
            ("run", [field, ..]) => {
                if RUN_FIELDS.contains(field) {
                    return Ok(());
                }
                let help = match did_you_mean(field, RUN_FIELDS.iter().copied()) {
                    Some(s) => format!("did you mean `run.{s}`?"),
                    None => format!("`run` has {}", list_names(RUN_FIELDS.iter())),
                };
                Err((undefined(&format!("run.{field}")), help))
            }
            ("trigger", ["payload", ..]) => Ok(()),
            ("trigger", [other, ..]) => Err((
                undefined(&format!("trigger.{other}")),
                "what started the run is `trigger.payload`".to_string(),
            )),
            ("steps", [name, more @ ..]) => {
                if self.direct.contains(name) {
                    return match more {
                        [] | ["value", ..] => Ok(()),
                        [other, ..] => Err((
                            undefined(&format!("steps.{name}.{other}")),
                            format!("a step's output is `steps.{name}.value`"),
                        )),
                    };
                }
                if self.names.iter().any(|n| n == name) {
                    return Err((
                        format!("step `{}` reads `steps.{name}` but does not depend on it", self.step),
                        format!("add `{name}` to `needs:` of step `{}` so that it runs first", self.step),
                    ));
                }
                let help = match did_you_mean(name, self.direct.iter().copied()) {
                    Some(s) => format!("did you mean `steps.{s}`?"),
                    None if self.direct.is_empty() => {
                        format!("step `{}` depends on no step; add one to `needs:`", self.step)
                    }
                    None => format!("step `{}` depends on {}", self.step, list_names(self.direct)),
                };
                Err((undefined(&format!("steps.{name}")), help))
            }
            _ if BUILTIN_GLOBALS.contains(&root) => Ok(()),
            _ => {
                let help = match did_you_mean(root, ROOTS.iter().copied()) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => "templates can read `params`, `env.vars`, `secrets`, `run`, `trigger.payload` and `steps`".to_string(),
                };
                Err((undefined(root), help))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::test_catalog::ShellCatalog;

    struct Project(tempfile::TempDir);

    impl Project {
        fn new(files: &[(&str, &str)]) -> Project {
            let dir = tempfile::tempdir().expect("tempdir");
            for (path, text) in files {
                let path = dir.path().join(path);
                if let Some(parent) = path.parent() {
                    fs_err::create_dir_all(parent).expect("mkdir");
                }
                fs_err::write(path, text).expect("write");
            }
            Project(dir)
        }

        fn with_pipeline(text: &str) -> Project {
            Project::new(&[
                ("weir.yaml", "name: demo\nenvironment: dev\n"),
                (
                    "environments/dev.yaml",
                    "vars: {region: eu}\nsecrets: [TOKEN]\n",
                ),
                ("pipelines/p.yaml", text),
            ])
        }

        fn check(&self) -> CheckOutput {
            check_project(self.0.path(), &ShellCatalog, &[])
        }
    }

    /// `(code, line, column)` of every diagnostic.
    fn found(out: &CheckOutput) -> Vec<(&str, u32, u32)> {
        out.diagnostics
            .iter()
            .map(|d| {
                let s = d.primary_span().unwrap_or(Span::new(0, 0, 0, 0));
                (d.code.as_str(), s.line, s.column)
            })
            .collect()
    }

    #[test]
    fn plan_orders_steps_and_resolves_defaults() {
        let out = Project::with_pipeline(
            "retries: {max: 2, backoff: 1m}\ntimeout: 10m\nsteps:\n  report:\n    shell: {run: x, inputs: [load]}\n    retries: 5\n  load:\n    shell: echo load\n    needs: [extract]\n    timeout: 30s\n  extract:\n    shell: echo extract\n    environment: dev\n",
        )
        .check();
        assert_eq!(out.diagnostics, Vec::<Diagnostic>::new());
        let plan = &out.plans["p"];
        assert_eq!(plan.file, "pipelines/p.yaml");
        let steps: Vec<(&str, Vec<&str>)> = plan
            .steps
            .iter()
            .map(|s| {
                (
                    s.name.as_str(),
                    s.depends_on.iter().map(String::as_str).collect(),
                )
            })
            .collect();
        assert_eq!(
            steps,
            [
                ("extract", vec![]),
                ("load", vec!["extract"]),
                ("report", vec!["load"])
            ]
        );
        let report = &plan.steps[2];
        assert_eq!(
            report.retries,
            RetryPolicy {
                max: 5,
                backoff: Duration::from_secs(60)
            }
        );
        assert_eq!(report.timeout, Some(Duration::from_secs(600)));
        assert_eq!(
            report.spec,
            serde_json::json!({"run": "x", "inputs": ["load"]})
        );
        assert_eq!(plan.steps[1].timeout, Some(Duration::from_secs(30)));
        assert_eq!(plan.steps[0].environment.as_deref(), Some("dev"));
    }

    #[test]
    fn defaults_without_pipeline_policy() {
        let out = Project::with_pipeline("steps:\n  a:\n    shell: echo\n").check();
        let a = &out.plans["p"].steps[0];
        assert_eq!(a.retries, RetryPolicy::default());
        assert_eq!(a.timeout, None);
        assert_eq!(a.environment, None);
    }

    #[test]
    fn errors_of_every_step_are_reported_at_once() {
        let out = Project::with_pipeline(
            "steps:\n  a:\n    shell: echo\n    retrys: 1\n    nedds: [b]\n  b:\n    shell: echo\n    timeout: 5x\n  c:\n    description: nothing\n",
        )
        .check();
        assert_eq!(
            found(&out),
            [
                ("unknown-key", 4, 5),
                ("unknown-key", 5, 5),
                ("invalid-duration", 8, 14),
                ("no-action", 9, 3),
            ]
        );
        assert!(out.plans.is_empty());
        assert_eq!(
            out.diagnostics[1].help.as_deref(),
            Some("did you mean `needs`?")
        );
    }

    #[test]
    fn action_dependencies_are_checked() {
        let out = Project::with_pipeline("steps:\n  a:\n    shell: {run: x, inputs: [b, zz]}\n  b:\n    shell: {run: x, inputs: [a]}\n").check();
        assert_eq!(
            found(&out),
            [("dependency-cycle", 3, 30), ("unknown-step", 3, 33)]
        );
        assert_eq!(
            out.diagnostics[0].message,
            "steps depend on each other in a cycle: `a` → `b` → `a`"
        );
        assert_eq!(out.diagnostics[0].labels.len(), 2);
    }

    #[test]
    fn self_dependency_is_a_cycle() {
        let out = Project::with_pipeline("steps:\n  a:\n    shell: echo\n    needs: [a]\n").check();
        assert_eq!(found(&out), [("dependency-cycle", 4, 13)]);
    }

    #[test]
    fn template_scope_follows_dependencies_and_environment() {
        let out = Project::with_pipeline(
            "params:\n  day: {type: string, default: today}\nsteps:\n  a:\n    shell: echo {{ params.day }} {{ env.vars.region }} {{ secrets.TOKEN }} {{ run.logical_date }} {{ trigger.payload.path }}\n  b:\n    shell: echo {{ steps.a.value }} {{ steps.c.value }}\n    needs: [a]\n  c:\n    shell: \"echo {{ run.idd }} {{ secrets.OTHER }} {{ env.region }} {{ nope }}\"\n",
        )
        .check();
        assert_eq!(
            found(&out),
            [
                ("undefined-variable", 7, 40),
                ("undefined-variable", 10, 21),
                ("undefined-variable", 10, 35),
                ("undefined-variable", 10, 55),
                ("undefined-variable", 10, 72),
            ]
        );
        let messages: Vec<&str> = out.diagnostics.iter().map(|d| d.message.as_str()).collect();
        assert_eq!(
            messages[0],
            "step `b` reads `steps.c` but does not depend on it"
        );
        assert_eq!(
            out.diagnostics[1].help.as_deref(),
            Some("did you mean `run.id`?")
        );
    }

    #[test]
    fn undefined_variable_inside_a_block_scalar_points_at_the_name() {
        let out = Project::with_pipeline(
            "steps:\n  a:\n    shell: |\n      echo one\n        echo {{ params.nope }}\n",
        )
        .check();
        assert_eq!(found(&out), [("undefined-variable", 5, 17)]);
        let span = out.diagnostics[0].primary_span().expect("span");
        assert_eq!(span.len, "params.nope".len());
    }

    #[test]
    fn param_problems() {
        let out = Project::with_pipeline(
            "params:\n  a: {type: integer}\n  b: {type: float, default: x}\n  c: {type: float, default: 1}\n  d-e: {type: bool}\nsteps:\n  s:\n    shell: echo\n",
        )
        .check();
        assert_eq!(found(&out), [("invalid-param-type", 2, 13)]);
        assert_eq!(
            out.diagnostics[0].help.as_deref(),
            Some("did you mean `int`?")
        );

        let out = Project::with_pipeline(
            "params:\n  b: {type: float, default: x}\n  c: {type: float, default: 1}\n  d-e: {type: bool}\nsteps:\n  s:\n    shell: echo\n",
        )
        .check();
        assert_eq!(
            found(&out),
            [("invalid-default", 2, 29), ("invalid-name", 4, 3)]
        );
    }

    #[test]
    fn project_level_problems() {
        let p = Project::new(&[
            (
                "weir.yaml",
                "name: demo\nnamespace: my team\nenvironment: prod\n",
            ),
            ("environments/dev.yaml", "vars: {a: 1}\n"),
            (
                "pipelines/p.yaml",
                "name: q\nsteps:\n  a:\n    shell: echo\n",
            ),
        ]);
        let out = p.check();
        let files: Vec<(&str, &str)> = out
            .diagnostics
            .iter()
            .map(|d| (d.file.as_deref().unwrap_or(""), d.code.as_str()))
            .collect();
        assert_eq!(
            files,
            [
                ("pipelines/p.yaml", "pipeline-name-mismatch"),
                ("weir.yaml", "invalid-name"),
                ("weir.yaml", "unknown-environment"),
            ]
        );
        assert!(out.sources.get("weir.yaml").is_some());
        assert!(out.sources.get("pipelines/p.yaml").is_some());
    }

    #[test]
    fn only_selects_pipelines_and_reports_unknown_ones() {
        let p = Project::new(&[
            ("weir.yaml", "name: demo\n"),
            ("pipelines/sales.yaml", "steps:\n  a:\n    shell: echo\n"),
            ("pipelines/broken.yaml", "steps: 5\n"),
        ]);
        let out = check_project(p.0.path(), &ShellCatalog, &["sales".into(), "sale".into()]);
        assert_eq!(found(&out), [("unknown-pipeline", 0, 0)]);
        assert_eq!(
            out.diagnostics[0].help.as_deref(),
            Some("did you mean `sales`?")
        );
        assert_eq!(out.plans.keys().collect::<Vec<_>>(), ["sales"]);
    }

    #[test]
    fn missing_weir_yaml_is_a_diagnostic() {
        let p = Project::new(&[("pipelines/a.yaml", "steps:\n  a:\n    shell: echo\n")]);
        let out = p.check();
        assert_eq!(out.diagnostics[0].code, "missing-project");
        assert!(
            out.diagnostics[0]
                .help
                .as_deref()
                .is_some_and(|h| h.contains("weir init"))
        );
        assert!(out.plans.contains_key("a"));
    }

    #[test]
    fn finds_the_root_from_below() {
        let p = Project::new(&[("weir.yaml", "name: demo\n"), ("pipelines/x/y.txt", "")]);
        let root = find_project_root(&p.0.path().join("pipelines/x")).expect("found");
        assert_eq!(root, std::path::absolute(p.0.path()).expect("abs"));
        let empty = tempfile::tempdir().expect("tempdir");
        assert!(find_project_root(empty.path()).is_none_or(|r| !r.starts_with(empty.path())));
    }

    #[test]
    fn loads_environments() {
        let p = Project::with_pipeline("steps:\n  a:\n    shell: echo\n");
        let env = load_environment(p.0.path(), "dev").expect("dev");
        assert_eq!(env.vars.get("region").map(String::as_str), Some("eu"));
        assert_eq!(env.secrets, ["TOKEN"]);
        let d = load_environment(p.0.path(), "dve").expect_err("missing");
        assert_eq!(d.code, "unknown-environment");
        assert_eq!(
            d.help.as_deref(),
            Some("did you mean `dev`? Otherwise create `environments/dve.yaml`")
        );
        assert_eq!(
            load_environment(p.0.path(), "../weir")
                .expect_err("no")
                .code,
            "unknown-environment"
        );
    }

    #[test]
    fn no_prefix_or_mangling_of_a_pipeline_panics() {
        let text = "params:\n  n: {type: int, default: 1}\ntriggers:\n  - cron: {expr: '0 3 * * *', catchup: all}\n  - file: {path: 'a/*'}\nretries: {max: 1, backoff: 2s}\nsteps:\n  a:\n    shell: |\n      echo {{ params.n }} é\n    needs: [b]\n  b:\n    shell: {run: x, inputs: [a]}\n    timeout: 1m\n";
        let config = ProjectConfig {
            name: "demo".into(),
            description: None,
            namespace: "default".into(),
            environment: None,
        };
        let envs = EnvNames {
            names: Vec::new(),
            files: Vec::new(),
        };
        let environments = BTreeMap::new();
        let mut variants: Vec<String> = Vec::new();
        for (i, _) in text.char_indices() {
            variants.push(text[..i].to_string());
            variants.push(format!("{}\t{}", &text[..i], &text[i..]));
            variants.push(format!("{}{{{{ {}", &text[..i], &text[i..]));
            variants.push(format!("{}: [{}", &text[..i], &text[i..]));
        }
        for v in &variants {
            let checker = PipelineChecker {
                stem: "p",
                file: "pipelines/p.yaml",
                text: v,
                catalog: &ShellCatalog,
                config: &config,
                envs: &envs,
                environments: &environments,
                contracts: &BTreeMap::new(),
                pipelines: &BTreeMap::new(),
                diags: Vec::new(),
            };
            let (_, diags) = checker.check();
            for d in diags {
                if let Some(s) = d.primary_span() {
                    assert!(s.offset + s.len <= v.len(), "{d} out of bounds in {v:?}");
                }
            }
        }
    }
}
