//! Every diagnostic code weir-spec emits, with its one-line meaning.
//!
//! Golden tests assert that each code has a failing case in
//! `tests/golden/check-<code>/`, so a code is never added silently.

/// `(code, meaning)` for every diagnostic this crate can produce.
pub const CODES: &[(&str, &str)] = &[
    ("yaml-syntax", "the file is not valid YAML"),
    ("yaml-tab", "a tab character is used for indentation"),
    ("empty-file", "a YAML file has no content"),
    (
        "multiple-documents",
        "a YAML file holds more than one document (`---`)",
    ),
    ("duplicate-key", "a key appears twice in the same map"),
    ("unknown-key", "a key that the map does not accept"),
    (
        "invalid-type",
        "a value of the wrong type (e.g. a string where a number is expected)",
    ),
    (
        "invalid-value",
        "a value of the right type that is not allowed (e.g. an unknown variant)",
    ),
    ("missing-key", "a required key is absent"),
    (
        "sql-unknown-table",
        "a step reads `<pipeline>.<step>` that names no pipeline or step of the project",
    ),
    (
        "unknown-schema",
        "a step's `schema:` names no contract under `schemas/`",
    ),
    (
        "not-a-data-step",
        "`schema:`, `checks:`, `anonymize:` or `persist:` on a step that produces no dataset",
    ),
    (
        "no-hash-salt",
        "`anonymize: hash` in a step whose environment sets no `hash_salt`",
    ),
    (
        "unknown-secret",
        "an environment's `hash_salt` names a secret it does not declare",
    ),
    ("missing-project", "no `weir.yaml` at the project root"),
    (
        "invalid-name",
        "a pipeline, step, param or namespace name that is not an identifier",
    ),
    (
        "pipeline-name-mismatch",
        "a pipeline's `name:` differs from its file name",
    ),
    (
        "duplicate-pipeline",
        "two files in `pipelines/` define the same pipeline",
    ),
    (
        "unknown-pipeline",
        "a pipeline selected on the command line does not exist",
    ),
    ("no-steps", "a pipeline has no steps"),
    (
        "no-action",
        "a step has no action key (`shell:`, `sql:`, ...)",
    ),
    ("multiple-actions", "a step has more than one action key"),
    (
        "duplicate-step",
        "two steps of a pipeline have the same name",
    ),
    (
        "unknown-step",
        "a dependency names a step that does not exist",
    ),
    ("dependency-cycle", "steps depend on each other in a cycle"),
    (
        "undefined-variable",
        "a template uses a variable that is not defined",
    ),
    ("template-syntax", "a template does not parse"),
    (
        "invalid-param-type",
        "a param's `type:` is not one of string, int, float, bool",
    ),
    (
        "invalid-default",
        "a param's default does not match its declared type",
    ),
    (
        "invalid-duration",
        "a duration (`timeout:`, `backoff:`) does not parse",
    ),
    ("invalid-cron", "a cron expression does not parse"),
    (
        "unknown-environment",
        "an `environment:` names a missing `environments/<name>.yaml`",
    ),
    (
        "unreadable-file",
        "a project file cannot be read (permissions, not UTF-8)",
    ),
];

/// Whether `code` is one of [`CODES`].
pub fn is_known_code(code: &str) -> bool {
    CODES.iter().any(|(c, _)| *c == code)
}
