//! Argo CD's verdict on an object: the health scripts of
//! deploy/argocd/health.yaml run in the Lua VM Argo CD embeds
//! (tools/argocd-health, built by tools/argocd-health.sh into the cache).

use std::process::{Command, Stdio};
use std::sync::OnceLock;

use kube::Resource;
use serde::Serialize;

fn bin() -> &'static str {
    static BIN: OnceLock<String> = OnceLock::new();
    BIN.get_or_init(|| super::cached_tool("argocd-health.sh"))
}

/// Argo CD's health of `obj`: (status, message), e.g. ("Suspended", "...").
pub fn argocd_health<K: Resource<DynamicType = ()> + Serialize>(obj: &K) -> (String, String) {
    let health = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/argocd/health.yaml");
    let key = format!("resource.customizations.health.ses.reputation.io_{}", K::kind(&()));
    let mut child = Command::new(bin())
        .args([health, &key])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn argocd-health");
    serde_json::to_writer(child.stdin.take().expect("stdin"), obj).expect("write object");
    let out = child.wait_with_output().expect("argocd-health output");
    assert!(
        out.status.success(),
        "argocd-health failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).expect("utf-8");
    let line = stdout.trim_end_matches('\n');
    let (status, message) = line.split_once(' ').unwrap_or((line, ""));
    (status.to_string(), message.to_string())
}
