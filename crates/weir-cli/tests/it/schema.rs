//! `weir schema` is generated from the Rust types; it must accept what
//! `weir check` accepts and reject what it rejects, or editors mislead users.

use weir_test::repo_root;

fn schema_validator() -> jsonschema::Validator {
    let p = crate::project();
    let out = p.weir(&["schema"]).expect("weir schema");
    assert!(out.status.success());
    let schema: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    jsonschema::validator_for(&schema).expect("a valid JSON Schema")
}

fn yaml(text: &str) -> serde_json::Value {
    serde_saphyr::from_str(text).expect("YAML")
}

#[test]
fn schema_accepts_every_valid_pipeline_in_the_repo() {
    let validator = schema_validator();
    let mut files = vec![
        repo_root().join("examples/demo/pipelines/sales.yaml"),
        repo_root().join("examples/demo/pipelines/revenue.yaml"),
    ];
    for dir in [
        "check-ok",
        "check-ok-data",
        "run-ok",
        "run-failure",
        "run-retry",
        "run-timeout",
        "run-data",
        "run-contracts",
        "run-checks",
        "run-anonymize",
        "run-export",
        "run-sample",
    ] {
        for entry in fs_err::read_dir(repo_root().join("tests/golden").join(dir).join("pipelines"))
            .expect("pipelines")
        {
            files.push(entry.expect("entry").path());
        }
    }
    for file in files {
        let doc = yaml(&fs_err::read_to_string(&file).expect("read"));
        let errors: Vec<String> = validator.iter_errors(&doc).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{}: {errors:?}", file.display());
    }
}

#[test]
fn schema_rejects_unknown_keys_missing_actions_and_bad_types() {
    let validator = schema_validator();
    for bad in [
        "name: p\nsteps:\n  a:\n    shell: echo\n    retrys: 3\n",
        "name: p\nsteps:\n  a:\n    needs: []\n",
        "name: p\nsteps:\n  a:\n    shell: [1, 2]\n",
        "name: p\nparams:\n  n: { type: integer }\nsteps:\n  a:\n    shell: echo\n",
        "name: p\nstepz: {}\n",
    ] {
        assert!(!validator.is_valid(&yaml(bad)), "schema accepted:\n{bad}");
    }
}
