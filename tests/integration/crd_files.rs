//! The CRD YAML shipped in the chart and deploy/ must be exactly what the
//! Rust types generate (`ses-reputation-operator crds`).

use std::path::Path;

fn check(path: &str) {
    let generated = ses_reputation_operator::api::crds_yaml().expect("serialize CRDs");
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    let shipped = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("read {}: {e}", file.display()));
    if let Some((n, (want, got))) = generated
        .lines()
        .zip(shipped.lines())
        .enumerate()
        .find(|(_, (a, b))| a != b)
    {
        panic!(
            "{path} is out of date with the Rust types (line {}: expected {want:?}, found {got:?}): run `make crds`",
            n + 1
        );
    }
    assert_eq!(
        generated.lines().count(),
        shipped.lines().count(),
        "{path} is out of date with the Rust types: run `make crds`"
    );
}

#[test]
fn chart_crds_match_the_types() {
    check("charts/ses-reputation-operator/crds/crds.yaml");
}

#[test]
fn deploy_crds_match_the_types() {
    check("deploy/crds/crds.yaml");
}

#[test]
fn crd_reference_matches_the_types() {
    let generated = ses_reputation_operator::api::reference::markdown();
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/crd-reference.md");
    let shipped = std::fs::read_to_string(&file).unwrap_or_default();
    assert!(
        shipped == generated,
        "docs/crd-reference.md is out of date: run `make crds`"
    );
}
