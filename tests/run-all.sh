#!/usr/bin/env bash
# run-all.sh - the whole test suite, as CI runs it: installs what is missing,
# builds twice (release and ASan/UBSan), and runs every unit and integration
# test with ctest against real PostgreSQL, HTTP and fault-proxy servers; then
# a short libFuzzer run of every fuzz target (DSA_FUZZ_SECONDS each, default 10).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh
bash scripts/check-banned.sh

echo "== release build"
bash scripts/build.sh build
(cd build && ctest --output-on-failure -j4)  # most tests wait on throttled servers, not CPU

echo "== ASan/UBSan build"
bash scripts/build.sh build-asan -DDSA_SANITIZE=ON
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1
export DSA_TEST_SCALE=${DSA_TEST_SCALE:-0.3}
(cd build-asan && ctest --output-on-failure -j4)

echo "== fuzz (libFuzzer, clang)"
bash scripts/fuzz.sh "${DSA_FUZZ_SECONDS:-10}"
