#!/usr/bin/env bash
# demo.sh - from a fresh Debian 12 machine to a real import, end to end:
# installs what is missing, builds, makes a sample .csv.gz, serves it over HTTP
# on loopback, and imports it into the embedded PostgreSQL (no configuration),
# then shows the new commit and the job's progress with the platform's queries.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh
bash scripts/build.sh build

work=$(mktemp -d)
trap 'kill "${http_pid:-}" 2>/dev/null || true; rm -rf "$work"' EXIT
/usr/bin/python3 - "$work/sales.csv.gz" <<'PY'
import csv, gzip, random, sys
random.seed(7)
with gzip.open(sys.argv[1], "wt", newline="") as f:
    w = csv.writer(f)
    w.writerow(["order_id", "customer", "city", "amount", "note"])
    for i in range(1, 200001):
        w.writerow([i, f"Customer {i % 5000}", random.choice(["Zürich", "Paris", "東京", "Lagos"]),
                    f"{random.random() * 1000:.2f}", random.choice(["", "gift, wrapped", 'said "hi"'])])
PY
port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
/usr/bin/python3 -m http.server "$port" --bind 127.0.0.1 --directory "$work" >/dev/null 2>&1 &
http_pid=$!
for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/"$port") 2>/dev/null && break; sleep 0.1; done

echo "== dsa-ingest import http://127.0.0.1:$port/sales.csv.gz --dataset sales --message 'daily load'"
unset DATABASE_URL PGHOST PGPORT PGDATABASE PGUSER PGSERVICE
./build/dsa-ingest import "http://127.0.0.1:$port/sales.csv.gz" --dataset sales --message "daily load"

home=${DSA_INGEST_HOME:-$([ "$(id -u)" -eq 0 ] && echo /var/lib/dsa-ingest || echo "${XDG_DATA_HOME:-$HOME/.local/share}/dsa-ingest")}
psql=(psql -X -h "$home/run" -p 5432 -U postgres -d postgres)
echo "== the import job (the platform's monitoring query)"
"${psql[@]}" -c "SELECT id, run_parameters->>'filename' AS filename,
       run_parameters->'progress'->>'percentage' AS pct,
       run_parameters->'progress'->>'rows_processed' AS rows, status,
       EXTRACT(EPOCH FROM (completed_at - created_at)) AS duration_seconds
  FROM dsa_jobs.analysis_runs WHERE run_type = 'import' ORDER BY created_at DESC LIMIT 3;"
echo "== rows per commit"
"${psql[@]}" -c "SELECT c.commit_id, c.message, COUNT(cr.logical_row_id) AS row_count, c.committed_at
  FROM dsa_core.commits c JOIN dsa_core.commit_rows cr ON c.commit_id = cr.commit_id
  GROUP BY c.commit_id, c.message, c.committed_at ORDER BY c.committed_at DESC LIMIT 3;"
echo "== two stored rows"
"${psql[@]}" -c "SELECT cr.logical_row_id, r.data FROM dsa_core.commit_rows cr
  JOIN dsa_core.rows r USING (row_hash) JOIN dsa_core.refs f ON f.commit_id = cr.commit_id
  WHERE f.name = 'main' ORDER BY cr.logical_row_id LIMIT 2;"
echo "The embedded PostgreSQL keeps running for the next import (data in $home)."
