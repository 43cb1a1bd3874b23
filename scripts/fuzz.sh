#!/usr/bin/env bash
# fuzz.sh [SECONDS] - builds the libFuzzer targets of tests/fuzz/ (clang, -DDSA_FUZZ=ON,
# in build-fuzz/), replays tests/fuzz/regressions/<target>/* through each, then fuzzes
# each target for SECONDS (default 30) from a copy of its seed corpus (the committed
# corpus never grows). Fails if any target crashes, leaks, breaks an invariant or
# times out; the inputs that did are saved in build-fuzz/crashes/<target>/.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-30}
dir=build-fuzz

CC=clang cmake -S . -B "$dir" -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DDSA_FUZZ=ON >/dev/null
targets=()
for src in tests/fuzz/fuzz_*.c; do
  targets+=("$(basename "$src" .c)")
done
cmake --build "$dir" -j"$(nproc)" --target "${targets[@]}"

# Replays, corpus copies and logs live in build-fuzz/; -rss_limit_mb also caps one malloc.
opts=(-rss_limit_mb=2048 -timeout=30)
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1}
mkdir -p "$dir/logs" "$dir/crashes"
failed=()

# replay feeds the target its regression inputs once each (earlier crashes, now tests).
replay() {
  local t=$1 inputs=()
  [ -d "tests/fuzz/regressions/$t" ] || return 0
  for f in "tests/fuzz/regressions/$t"/*; do
    [ -f "$f" ] && inputs+=("$f")
  done
  [ ${#inputs[@]} -gt 0 ] || return 0
  if "$dir/$t" "${opts[@]}" "${inputs[@]}" >"$dir/logs/$t.replay.log" 2>&1; then
    echo "fuzz: $t: ${#inputs[@]} regression inputs pass"
  else
    echo "fuzz: $t: a regression input fails again:" >&2
    tail -n 40 "$dir/logs/$t.replay.log" >&2
    failed+=("$t (regression)")
  fi
}

# fuzz runs the target for $secs seconds on a fresh copy of its seed corpus; its
# report goes to $dir/logs/$t.result, and $dir/logs/$t.failed marks a crash.
fuzz() {
  local t=$1 work="$dir/corpus/$t"
  rm -rf "$work" "$dir/logs/$t.failed"
  mkdir -p "$work" "$dir/crashes/$t"
  cp tests/fuzz/corpus/"$t"/* "$work"/
  if "$dir/$t" "${opts[@]}" -max_total_time="$secs" -print_final_stats=1 \
       -artifact_prefix="$dir/crashes/$t/" "$work" >"$dir/logs/$t.log" 2>&1; then
    local runs eps
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$dir/logs/$t.log")
    eps=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$dir/logs/$t.log")
    echo "fuzz: $t: ${secs}s, $runs runs, $eps exec/s, no crash"
  else
    echo "fuzz: $t: CRASH (input in $dir/crashes/$t/):"
    grep -E 'invariant failed|ERROR:|SUMMARY:|Test unit written' "$dir/logs/$t.log" || true
    tail -n 40 "$dir/logs/$t.log"
    touch "$dir/logs/$t.failed"
  fi
}

for t in "${targets[@]}"; do
  replay "$t"
done
# Each target is one process on one core: run nproc of them at a time.
running=0
for t in "${targets[@]}"; do
  if [ "$running" -ge "$(nproc)" ]; then
    wait -n
    running=$((running - 1))
  fi
  fuzz "$t" >"$dir/logs/$t.result" 2>&1 &
  running=$((running + 1))
done
wait
for t in "${targets[@]}"; do
  if [ -e "$dir/logs/$t.failed" ]; then
    cat "$dir/logs/$t.result" >&2
    failed+=("$t")
  else
    cat "$dir/logs/$t.result"
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: failed: ${failed[*]} (logs in $dir/logs/)" >&2
  exit 1
fi
