#!/usr/bin/env bash
# The miner's SHA-NI loop must hold no 256-bit (ymm) instruction, whatever the build flags:
# next to dirty upper YMM state, legacy-SSE SHA instructions run about 100x slower
# (LLVM issue 142368). Builds the miner's search loop (examples/search_loop.rs) with the
# release profile (LTO, default target), and again with `-C target-cpu=native` (which
# enables AVX2), and checks the loop's disassembly in both. This is the miner crate's code
# under the shipping profile, not the `oxchain` binary itself: building the whole binary
# with LTO took about 15 minutes of CI for the same function.
set -euo pipefail
cd "$(dirname "$0")/.."
symbol='oxchain_miner::shani::hash_words'

check() {
  local label=$1 binary=$2 body
  # awk reads to the end (no early exit), so objdump never dies of SIGPIPE under pipefail.
  body=$(objdump -d --no-show-raw-insn -C "$binary" | awk -v s="<$symbol>:" '$0 ~ s {f=1; next} f && /^$/ {f=0} f')
  if [ -z "$body" ]; then
    echo "check-miner-asm: $symbol not found in $binary ($label)" >&2
    exit 1
  fi
  local rounds ymm
  rounds=$(grep -c sha256rnds2 <<<"$body" || true)
  ymm=$(grep -c ymm <<<"$body" || true)
  echo "check-miner-asm: $label: $rounds sha256rnds2, $ymm ymm instructions"
  if [ "$rounds" -lt 64 ]; then
    echo "check-miner-asm: expected the unrolled SHA-NI loop in $symbol" >&2
    exit 1
  fi
  if [ "$ymm" -ne 0 ]; then
    grep ymm <<<"$body" | head >&2
    echo "check-miner-asm: ymm instructions in the SHA-NI loop ($label)" >&2
    exit 1
  fi
}

target=${CARGO_TARGET_DIR:-target}
cargo build --release --quiet -p oxchain-miner --example search_loop
check "release" "$target/release/examples/search_loop"
RUSTFLAGS="-C target-cpu=native" cargo build --release --quiet -p oxchain-miner --example search_loop --target-dir "$target/native"
check "target-cpu=native" "$target/native/release/examples/search_loop"
