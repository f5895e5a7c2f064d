//! kstatus (sigs.k8s.io/cli-utils, the library Flux and kpt use) as a
//! test helper: what GitOps tools would show for an object.

use std::process::{Command, Stdio};
use std::sync::OnceLock;

use serde::Serialize;

/// The kstatus binary tools/kstatus.sh builds.
pub fn kstatus_bin() -> &'static str {
    static BIN: OnceLock<String> = OnceLock::new();
    BIN.get_or_init(|| super::cached_tool("kstatus.sh"))
}

/// kstatus's verdict on one object: (status, message). Panics unless the
/// output is exactly one line.
pub fn kstatus<K: Serialize>(obj: &K) -> (String, String) {
    let mut child = Command::new(kstatus_bin())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn kstatus");
    serde_json::to_writer(child.stdin.take().expect("stdin"), obj).expect("write object");
    let out = child.wait_with_output().expect("kstatus output");
    let stdout = String::from_utf8(out.stdout).expect("utf-8");
    assert!(
        out.status.success(),
        "kstatus failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = stdout.strip_suffix('\n').unwrap_or(&stdout);
    assert!(!line.contains('\n'), "kstatus message is not one line: {stdout:?}");
    let (status, message) = line.split_once(' ').unwrap_or((line, ""));
    (status.to_string(), message.to_string())
}
