//! The OpenAPI document is the contract (ADR 0026): Schemathesis drives a real regtest node
//! from the node's own `/openapi.json` with generated requests, valid and invalid by the
//! document, and checks every answer: a valid request gets a 2xx or a refusal that names
//! a state or a rule (404, 409, 422, 502, 503), an invalid one a 400, no answer is a 500,
//! and every answer's status, content type and body are the ones the document declares
//! (`--checks all`; `contract/schemathesis.toml`).
//!
//! Peering routes dial whatever host a generated request names, so the node and
//! Schemathesis run in a network namespace of their own with only its loopback
//! (`unshare --net`): nothing generated can leave it. `scripts/test` (the README's test
//! command) installs Schemathesis in `.cache/venv`.
//!
//! Under contract: every route but the events WebSocket (`GET /v1/events`): Schemathesis
//! does not speak WebSocket (a 101 is to it a rejection, and the upgraded connection
//! breaks its next request), so `crates/node/tests/v1.rs` drives that route from its
//! entry's declared headers and patterns instead. The tutorial routes' leniency is part
//! of their document: amounts and ports as numbers or text, spaces around names, and a
//! form body beside JSON on the flat ones, which Schemathesis generates too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;

/// Inside the namespace: loopback up, a fresh regtest node with three blocks, then
/// Schemathesis (bounded, so that the test ends within nextest's two minutes).
const SCRIPT: &str = r#"
set -u
ip link set lo up
"$OXCHAIN" node --network regtest --data-dir "$DATA" --api 127.0.0.1:5990 \
  --p2p 127.0.0.1:6990 --mine on-demand --threads 1 >"$DATA.log" 2>&1 &
node=$!
for _ in $(seq 100); do
  "$PYTHON" -c 'import urllib.request as u; u.urlopen("http://127.0.0.1:5990/v1/status", timeout=1)' \
    2>/dev/null && break
  sleep 0.1
done
"$PYTHON" -c 'import urllib.request as u; u.urlopen(u.Request("http://127.0.0.1:5990/v1/mine", data=b"{\"count\":3}"), timeout=10)'
timeout 90 "$SCHEMATHESIS" --config-file "$CONFIG" run http://127.0.0.1:5990/openapi.json \
  --checks all --exclude-path-regex '^/v1/events$' \
  --max-examples 40 --seed 1 --workers 1 --no-color --generation-database none
status=$?
kill $node
wait $node
exit $status
"#;

#[test]
fn every_route_keeps_the_openapi_contract() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let venv = root.join(".cache/venv/bin");
    let schemathesis = venv.join("schemathesis");
    assert!(
        schemathesis.exists(),
        "{} is missing: scripts/test installs Schemathesis there",
        schemathesis.display()
    );
    let data = tempfile::tempdir().unwrap();
    // In the temporary directory: Schemathesis keeps a cache where it runs.
    let out = Command::new("unshare")
        .current_dir(data.path())
        .args(["--map-root-user", "--net", "--", "sh", "-c", SCRIPT])
        .env("OXCHAIN", env!("CARGO_BIN_EXE_oxchain"))
        .env("DATA", data.path().join("node"))
        .env("SCHEMATHESIS", &schemathesis)
        .env("PYTHON", venv.join("python3"))
        .env(
            "CONFIG",
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/contract/schemathesis.toml"),
        )
        .output()
        .expect("unshare (util-linux) runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let log = std::fs::read_to_string(data.path().join("node.log")).unwrap_or_default();
    assert!(
        out.status.success(),
        "Schemathesis found the API off its document (or the namespace could not be made: \
         unshare needs user namespaces or root):\n{stdout}\n{stderr}\nnode log:\n{log}"
    );
    // It ran and tested routes: not an empty pass.
    assert!(
        stdout.contains("Tested:") && !stdout.contains("Tested: 0"),
        "{stdout}"
    );
}
