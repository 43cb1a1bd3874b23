#!/usr/bin/env bash
# check-banned.sh - fails when C sources use a banned call (STYLE.md): these
# have bounded or safer replacements everywhere they could appear.
set -euo pipefail
cd "$(dirname "$0")/.."
if grep -nE '\b(strcpy|strcat|sprintf|vsprintf|strtok|atoi|atol|gets)\s*\(' \
     $(git ls-files 'src/*.c' 'src/*.h' 'include/*.h' 'tests/*.c' 2>/dev/null || find src include tests -name '*.[ch]'); then
  echo "check-banned: banned call found (use snprintf, strtol, memcpy with a length…)" >&2
  exit 1
fi
