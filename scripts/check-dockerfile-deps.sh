#!/usr/bin/env bash
# check-dockerfile-deps.sh - the Dockerfile's runtime packages must be exactly the Debian
# packages of the shared libraries the binary links. "Links" means the binary's own
# DT_NEEDED entries (readelf -d), each resolved by the dynamic loader (ldd) to a file and
# that file to its package (dpkg -S): libraries pulled in only by other libraries are
# their packages' dependencies, which apt installs anyway, and libc6 is in every image.
# Packages that ship no library the binary loads (ca-certificates) are declared in the
# Dockerfile on a "# not-linked: PKG …" line. Fails on a mismatch in either direction.
#
# It also checks that the Dockerfile's build stage installs the same -dev packages as
# scripts/install-deps.sh, so the image builds against what CI builds against.
#
# usage: scripts/check-dockerfile-deps.sh [BINARY] [DOCKERFILE]   (default build/dsa-ingest)
set -euo pipefail
export LC_ALL=C

here="$(cd "$(dirname "$0")" && pwd)"
bin="${1:-$here/../build/dsa-ingest}"
dockerfile="${2:-$here/../Dockerfile}"
install_deps="$here/install-deps.sh"
[ -x "$bin" ] || { echo "check-dockerfile-deps: no binary at $bin" >&2; exit 2; }
[ -f "$dockerfile" ] || { echo "check-dockerfile-deps: no Dockerfile at $dockerfile" >&2; exit 2; }

# block prints the Dockerfile lines between "# NAME: begin" and "# NAME: end".
block() {
    sed -n "/^# $1: begin/,/^# $1: end/p" "$dockerfile"
}

# install_list prints, one per line, the packages of the `apt-get install` in its input:
# the words after "install" up to "&&", less options and line continuations.
# shellcheck disable=SC1003  # tr '\\' is a literal backslash, not an escape
install_list() {
    grep -v '^[[:space:]]*#' | tr '\\' ' ' | tr -s ' \t\n' '\n' |
        awk '/^install$/ {on = 1; next} /^&&$/ {on = 0} on && !/^-/ && NF' | sort -u
}

# package_of prints the package that owns a library file, trying the path as the loader
# gave it and its twin across the /usr merge (dpkg records whichever the package shipped).
package_of() {
    local f="$1" alt
    case "$f" in
    /usr/*) alt="${f#/usr}" ;;
    *) alt="/usr$f" ;;
    esac
    for p in "$f" "$alt" "$(readlink -f "$f")"; do
        if out="$(dpkg -S "$p" 2>/dev/null)"; then
            echo "${out%%: *}" | tr ',' '\n' | sed 's/^ *//; s/:.*//' | head -1
            return 0
        fi
    done
    return 1
}

# linked_packages prints the packages of the binary's DT_NEEDED libraries, less libc6.
linked_packages() {
    local ldd_out soname path
    ldd_out="$(ldd "$bin")"
    readelf -d "$bin" | sed -n 's/.*(NEEDED).*\[\(.*\)\].*/\1/p' | while read -r soname; do
        path="$(echo "$ldd_out" | awk -v s="$soname" '$1 == s && $2 == "=>" {print $3}')"
        if [ -z "$path" ] || [ "$path" = "not" ]; then
            echo "check-dockerfile-deps: $soname: not found by the loader" >&2
            echo "?$soname"
            continue
        fi
        package_of "$path" || { echo "check-dockerfile-deps: $path: no package owns it" >&2; echo "?$soname"; }
    done | grep -vx 'libc6' | sort -u
}

# compare reports the differences between two sorted lists; returns 1 if any.
compare() {
    local what="$1" want="$2" have="$3" only_want only_have
    only_want="$(comm -23 <(echo "$want") <(echo "$have") | sed '/^$/d')"
    only_have="$(comm -13 <(echo "$want") <(echo "$have") | sed '/^$/d')"
    if [ -z "$only_want" ] && [ -z "$only_have" ]; then
        echo "ok: $what: $(echo "$want" | tr '\n' ' ')"
        return 0
    fi
    [ -z "$only_want" ] || echo "MISMATCH: $what: missing from the Dockerfile: $(echo "$only_want" | tr '\n' ' ')"
    [ -z "$only_have" ] || echo "MISMATCH: $what: in the Dockerfile but not needed: $(echo "$only_have" | tr '\n' ' ')"
    return 1
}

runtime_block="$(block runtime-packages)"
[ -n "$runtime_block" ] || { echo "check-dockerfile-deps: no '# runtime-packages: begin/end' block in $dockerfile" >&2; exit 2; }
not_linked="$(echo "$runtime_block" | sed -n 's/^# not-linked: \([a-z0-9.+-]*\).*/\1/p' | sort -u)"
runtime="$(echo "$runtime_block" | install_list)"
linked="$(linked_packages)"
want_runtime="$(printf '%s\n%s\n' "$linked" "$not_linked" | sed '/^$/d' | sort -u)"

dev_dockerfile="$(block build-packages | install_list | grep -- '-dev$' || true)"
# Lines of install-deps.sh marked "# test-only" (the fuzzers' runtime, say) are not build deps.
dev_ci="$(sed -n '/^packages=(/,/^)/p' "$install_deps" | grep -v '# test-only' |
  tr -s ' \t()' '\n' | grep -- '-dev$' | sort -u)"

passed=0 failed=0
if compare "runtime packages (DT_NEEDED of $(basename "$bin") + not-linked)" "$want_runtime" "$runtime"; then
    passed=$((passed + 1))
else
    failed=$((failed + 1))
fi
if compare "build -dev packages (scripts/install-deps.sh)" "$dev_ci" "$dev_dockerfile"; then
    passed=$((passed + 1))
else
    failed=$((failed + 1))
fi
[ "$failed" -eq 0 ] || echo "the Dockerfile's package lists do not match; fix the Dockerfile"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
