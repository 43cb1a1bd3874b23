#!/usr/bin/env bash
# install-deps.sh - installs, from Debian 12's packages, whatever of the build,
# run and test dependencies is missing (and nothing when all are there).
set -euo pipefail

packages=(
  build-essential cmake pkg-config clang-format
  clang libclang-rt-14-dev  # test-only: scripts/fuzz.sh's libFuzzer and sanitizer runtimes
  libcurl4-openssl-dev libpq-dev zlib1g-dev libarchive-dev libxxhash-dev libcjson-dev
  libexpat1-dev libmicrohttpd-dev libcsv-dev
  postgresql python3 python3-pytest python3-psycopg2 time
  chromium python3-websocket prometheus  # test_serve: the page in headless Chromium; promtool
  python3-openpyxl python3-xlsxwriter zip bzip2 xz-utils zstd  # test_formats, test_xlsx: real producers
  python3-yaml python3-kubernetes  # tests/deploy/check_chart.py: YAML, Kubernetes API models
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# The local S3 server of the S3 tests and benchmark: npm's s3rver, pinned by
# tests/s3/package-lock.json. Node and npm come from Debian unless some node is
# already installed (a NodeSource node ships its own npm: apt's would conflict).
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "install-deps: installing nodejs npm"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq nodejs npm >/dev/null
fi
s3dir="$(cd "$(dirname "$0")/.." && pwd)/tests/s3"
if [ ! -d "$s3dir/node_modules/s3rver" ]; then
  echo "install-deps: npm ci --prefix tests/s3"
  npm ci --prefix "$s3dir" --no-audit --no-fund --loglevel=error
fi
