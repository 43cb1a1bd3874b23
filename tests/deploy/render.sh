#!/usr/bin/env bash
# render.sh - regenerates tests/deploy/rendered-*.yaml from the chart with `helm template`
# (needs a helm 3 binary: $HELM or helm on PATH). Run it after changing the chart, then
# tests/deploy/check_chart.py; CI has no helm, so it checks the committed files instead.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
helm="${HELM:-$(command -v helm || true)}"
[ -n "$helm" ] || { echo "render.sh: no helm (set HELM=/path/to/helm)" >&2; exit 2; }

# render NAME [VALUES]: one example, with a header saying how it was made.
render() {
    local name="$1" vf="${2:-}" opts=()
    [ -z "$vf" ] || opts=(-f "$here/$vf")
    {
        echo "# The dsa-ingest chart rendered with ${vf:-its default values} (release dsa-ingest,"
        echo "# namespace dsa): what \`helm template dsa-ingest helm/dsa-ingest --namespace dsa${vf:+ -f tests/deploy/$vf}\`"
        echo "# prints. tests/deploy/check_chart.py validates it without helm or a cluster and, where a"
        echo "# helm binary is found, renders the chart again and compares. Regenerate after changing"
        echo "# the chart (see docs/deployment-verification.md)."
        (cd "$root" && "$helm" template dsa-ingest helm/dsa-ingest --namespace dsa "${opts[@]}")
    } >"$here/rendered-$name.yaml"
    echo "render.sh: tests/deploy/rendered-$name.yaml"
}

render default
render full values-full.yaml
render hpa values-hpa.yaml
