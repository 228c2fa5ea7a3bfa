//! The bench commands, run as a user runs them: the built binary, its JSON last line.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

fn oxchain(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_oxchain"))
        .args(args)
        .output()
        .expect("oxchain runs")
}

fn openssl_on_path() -> bool {
    Command::new("openssl")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success())
}

fn last_json_line(output: &std::process::Output) -> serde_json::Value {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8(output.stdout.clone()).unwrap();
    let last = stdout.lines().last().expect("some output");
    serde_json::from_str(last).unwrap_or_else(|e| panic!("last line {last:?} is not JSON: {e}"))
}

fn positive(v: &serde_json::Value, key: &str) -> f64 {
    let x = v[key]
        .as_f64()
        .unwrap_or_else(|| panic!("{key} missing in {v}"));
    assert!(x > 0.0, "{key} = {x}");
    x
}

#[test]
fn bench_verify_prints_figures_and_the_openssl_reference() {
    let v = last_json_line(&oxchain(&["bench", "verify", "--seconds", "1", "--json"]));
    positive(&v, "single_verify_per_s");
    positive(&v, "batch64_verify_per_s");
    positive(&v, "batch1024_verify_per_s");
    if openssl_on_path() {
        positive(&v, "openssl_verify_per_s");
    } else {
        assert!(v["openssl_verify_per_s"].is_null());
    }
}

#[test]
fn bench_hash_prints_figures_and_the_openssl_reference() {
    let v = last_json_line(&oxchain(&["bench", "hash", "--seconds", "1", "--json"]));
    let hashes = positive(&v, "header_hashes_per_s");
    // Three compressions per header hash (both figures are rounded separately).
    assert!((positive(&v, "compressions_per_s") - hashes * 3.0).abs() <= 3.0);
    if openssl_on_path() {
        positive(&v, "openssl_sha256_16k_bytes_per_s");
    }
}

#[test]
fn bench_mine_prints_figures_and_the_openssl_reference() {
    let v = last_json_line(&oxchain(&[
        "bench",
        "mine",
        "--threads",
        "2",
        "--seconds",
        "1",
        "--json",
    ]));
    assert_eq!(v["threads"], 2);
    let total = positive(&v, "hashes_per_s");
    assert!((positive(&v, "hashes_per_s_per_thread") * 2.0 - total).abs() <= 2.0);
    positive(&v, "portable_hashes_per_s_one_thread");
    if openssl_on_path() {
        positive(&v, "openssl_sha256_16k_bytes_per_s");
    }
}

#[test]
fn bad_arguments_are_usage_errors_with_exit_code_2() {
    for args in [
        &["bench", "verify", "--seconds", "0"][..],
        &["bench", "nope"],
        &["--frobnicate"],
    ] {
        let out = oxchain(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(!out.stderr.is_empty());
    }
}

#[test]
fn bench_import_prints_figures_beside_batch_verification() {
    let v = last_json_line(&oxchain(&[
        "bench",
        "import",
        "--blocks",
        "2",
        "--threads",
        "2",
        "--json",
    ]));
    positive(&v, "txs_per_s");
    positive(&v, "blocks_per_s");
    positive(&v, "batch_verify_per_s");
    assert_eq!(v["threads"], 2);
    assert_eq!(v["blocks"], 2);
}

#[test]
fn bench_store_measures_peak_memory_at_three_lengths() {
    let v = last_json_line(&oxchain(&["bench", "store", "--blocks", "1000", "--json"]));
    let blocks: Vec<u64> = v["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b.as_u64().unwrap())
        .collect();
    assert_eq!(blocks, [1000, 1000, 2000]);
    for rss in v["peak_rss_kib"].as_array().unwrap() {
        assert!(rss.as_f64().unwrap() > 0.0, "{v}");
    }
    let sizes: Vec<u64> = v["store_bytes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b.as_u64().unwrap())
        .collect();
    assert!(
        sizes[2] > sizes[1],
        "a longer chain takes more room: {sizes:?}"
    );
    positive(&v, "double_vs_single_rss");
}

#[test]
fn bench_api_measures_the_routes_against_a_real_node() {
    let v = last_json_line(&oxchain(&[
        "bench",
        "api",
        "--seconds",
        "1",
        "--per-sender",
        "1",
        "--connections",
        "4",
        "--chain-blocks",
        "100",
        "--fill-step",
        "200",
        "--fill-steps",
        "2",
        "--import-blocks",
        "3",
        "--json",
    ]));
    positive(&v, "root_req_per_s");
    positive(&v, "status_req_per_s");
    positive(&v, "chain_req_per_s");
    positive(&v, "transfers_accepted_per_s");
    positive(&v, "presigned_post_per_s");
    positive(&v, "tutorial_post_first_per_s");
    positive(&v, "tutorial_post_last_per_s");
    positive(&v, "status_p99_ms_idle");
    positive(&v, "status_p99_ms_importing");
    assert_eq!(
        v["tutorial_post_steps_per_s"].as_array().map(Vec::len),
        Some(2)
    );
    assert_eq!(v["import_blocks"], 3);
    assert!(
        v["import_block_bytes"].as_u64().unwrap() > 1_000_000,
        "full blocks: {}",
        v["import_block_bytes"]
    );
    assert_eq!(v["transfers_accepted"], 1000);
    assert_eq!(v["transfers_refused"], 0);
    assert_eq!(v["chain_blocks"], 101);
}

#[test]
fn bench_sync_measures_a_sync_beside_the_local_import() {
    let v = last_json_line(&oxchain(&["bench", "sync", "--blocks", "20", "--json"]));
    positive(&v, "txs_per_s");
    positive(&v, "import_txs_per_s");
    positive(&v, "sync_vs_import");
    assert_eq!(v["blocks"], 20);
    assert_eq!(v["transfers_per_block"], 100);
}

#[test]
fn bench_sync_takes_blocks_of_a_given_size() {
    let v = last_json_line(&oxchain(&[
        "bench",
        "sync",
        "--blocks",
        "4",
        "--block-bytes",
        "200000",
        "--json",
    ]));
    positive(&v, "txs_per_s");
    positive(&v, "import_txs_per_s");
    let bytes = v["block_bytes"].as_u64().unwrap();
    assert!((150_000..=200_000).contains(&bytes), "block_bytes {bytes}");
    assert_eq!(v["blocks"], 4);
}

#[test]
fn bench_flood_measures_a_node_under_junk_gossip() {
    let v = last_json_line(&oxchain(&["bench", "flood", "--seconds", "3", "--json"]));
    positive(&v, "status_p99_ms");
    positive(&v, "status_p99_idle_ms");
    positive(&v, "flood_msgs_per_s");
    assert!(v["honest_blocks"].as_u64().unwrap() >= 1, "{v}");
    assert!(v["rss_growth_mib"].is_number(), "{v}");
}

#[test]
fn bench_light_fetches_and_checks_every_header_beside_checking_alone() {
    let v = last_json_line(&oxchain(&["bench", "light", "--blocks", "1000", "--json"]));
    assert_eq!(v["headers"], 1001);
    positive(&v, "fetch_headers_per_s");
    positive(&v, "check_headers_per_s");
    positive(&v, "fetch_vs_check");
    assert_eq!(v["target_s"], 0.05);
}
