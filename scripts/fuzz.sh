#!/usr/bin/env bash
# Runs every libFuzzer target of tests/fuzz for HAMLET_FUZZ_SECONDS seconds each (default 60), starting from its
# committed seed corpus (tests/fuzz/corpus/<target>/). Builds the targets first if needed, in the sanitized build
# directory of scripts/sanitize.sh (build-asan/, HAMLET_ASAN_BUILD_DIR). Fails (exit 1) when a target crashes,
# leaks, hangs (-timeout), runs out of memory (-rss_limit_mb) or triggers an ASan/UBSan report; the input that did
# it is left in the scratch directory and named in the output. New corpus entries go to the scratch directory
# (HAMLET_FUZZ_DIR, default a fresh temporary directory, removed again when nothing failed), never into the
# repository.
# Usage: scripts/fuzz.sh [target...]   (default: every tests/fuzz/fuzz_*.cpp)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$root/scripts/sanitizers/env.sh"
seconds="${HAMLET_FUZZ_SECONDS:-60}"
"$root/scripts/setup.sh"
configure_sanitized
cmake --build "$asan_build" -j "$jobs" --target hamlet_fuzz

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  for f in "$root"/tests/fuzz/fuzz_*.cpp; do targets+=("$(basename "$f" .cpp)"); done
fi
scratch="${HAMLET_FUZZ_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/hamlet-fuzz.XXXXXX")}"
mkdir -p "$scratch"
echo "fuzz: ${#targets[@]} targets, ${seconds} s each; corpus additions and crash inputs in $scratch"
failed=()
for t in "${targets[@]}"; do
  bin="$asan_build/fuzz/$t"
  [ -x "$bin" ] || { echo "fuzz: no target $t ($bin)" >&2; exit 2; }
  mkdir -p "$scratch/$t/corpus" "$scratch/$t/artifacts"
  args=(-max_total_time="$seconds" -timeout=30 -rss_limit_mb=4096 -print_final_stats=1
        -artifact_prefix="$scratch/$t/artifacts/")
  [ -f "$root/tests/fuzz/$t.dict" ] && args+=(-dict="$root/tests/fuzz/$t.dict")
  # The first corpus directory receives new inputs (scratch); the committed seeds are only read.
  dirs=("$scratch/$t/corpus")
  [ -d "$root/tests/fuzz/corpus/$t" ] && dirs+=("$root/tests/fuzz/corpus/$t")
  echo "fuzz: $t"
  # Run in the scratch directory: an input may name relative paths (fuzz_config's flags), never the repository.
  if (cd "$scratch/$t" && OMP_NUM_THREADS=1 "$bin" "${args[@]}" "${dirs[@]}") >"$scratch/$t/log" 2>&1; then
    { grep -E '^stat::(number_of_executed_units|new_units_added|peak_rss_mb)' "$scratch/$t/log" || true; } |
      sed "s/^/fuzz: $t: /"
  else
    echo "fuzz: $t FAILED; its log ($scratch/$t/log) ends:" >&2
    tail -n 60 "$scratch/$t/log" >&2
    failed+=("$t")
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: failed: ${failed[*]} (inputs in $scratch/<target>/artifacts/)" >&2
  exit 1
fi
# A scratch directory of our own goes once there is nothing in it to look at.
[ -n "${HAMLET_FUZZ_DIR:-}" ] || rm -rf "$scratch"
echo "fuzz: no findings"
