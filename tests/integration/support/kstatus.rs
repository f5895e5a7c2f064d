//! kstatus (sigs.k8s.io/cli-utils, the library Flux and kpt use) as a
//! test helper: what GitOps tools would show for an object.

use std::process::{Command, Stdio};
use std::sync::OnceLock;

use serde::Serialize;

/// tools/kstatus.sh builds the binary once (cached outside the checkout,
/// keyed by its sources; a lock serialises concurrent first runs) and
/// prints its path.
pub fn kstatus_bin() -> &'static str {
    static BIN: OnceLock<String> = OnceLock::new();
    BIN.get_or_init(|| {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tools/kstatus.sh");
        let out = Command::new(script)
            .stderr(Stdio::inherit())
            .output()
            .unwrap_or_else(|e| panic!("run {script}: {e}"));
        assert!(out.status.success(), "{script} failed");
        String::from_utf8(out.stdout).expect("utf-8 path").trim().to_string()
    })
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
