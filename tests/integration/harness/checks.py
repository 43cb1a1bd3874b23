"""Database assertions shared by the tests: what a completed or failed import leaves.

Why one module: every test ends by reading the same tables (refs → commit → commit_rows
→ rows, and the job row), and the char(64) columns need the same trimming everywhere.
"""
import json

from . import refreader


def _trim(v):
    return v.strip() if isinstance(v, str) else v


def dataset_id(db, name):
    return db.scalar("SELECT id FROM dsa_core.datasets WHERE name = %s", (name,))


def ref_head(db, dataset, ref="main"):
    """ref_head is the commit the ref points at (None when the ref does not exist)."""
    return _trim(db.scalar(
        "SELECT r.commit_id FROM dsa_core.refs r JOIN dsa_core.datasets d ON d.id = r.dataset_id"
        " WHERE d.name = %s AND r.name = %s", (dataset, ref)))


def commit(db, commit_id):
    row = db.one("SELECT * FROM dsa_core.commits WHERE commit_id = %s", (commit_id,))
    if row:
        row = {k: _trim(v) for k, v in row.items()}
    return row


def manifest(db, commit_id):
    """manifest maps logical_row_id → row_hash for a commit; fails on duplicate ids."""
    rows = db.query("SELECT logical_row_id, row_hash FROM dsa_core.commit_rows"
                    " WHERE commit_id = %s", (commit_id,))
    out = {r["logical_row_id"]: _trim(r["row_hash"]) for r in rows}
    assert len(out) == len(rows), "duplicate logical_row_id in commit %s" % commit_id
    return out


def commit_data(db, commit_id):
    """commit_data maps logical_row_id → (row_hash, data) by joining the manifest to rows."""
    rows = db.query("SELECT cr.logical_row_id, cr.row_hash, r.data FROM dsa_core.commit_rows cr"
                    " LEFT JOIN dsa_core.rows r ON r.row_hash = cr.row_hash"
                    " WHERE cr.commit_id = %s", (commit_id,))
    out = {}
    for r in rows:
        assert r["logical_row_id"] not in out, "duplicate %s" % r["logical_row_id"]
        assert r["data"] is not None, "manifest row %s has no rows entry" % r["logical_row_id"]
        data = r["data"] if not isinstance(r["data"], str) else json.loads(r["data"])
        out[r["logical_row_id"]] = (_trim(r["row_hash"]), data)
    return out


def job(db, job_id):
    """job is the dsa_jobs.analysis_runs row (status as text, JSON columns parsed)."""
    row = db.one("SELECT id::text AS id, run_type::text AS run_type, status::text AS status,"
                 " dataset_id, error_message, run_parameters, output_summary"
                 " FROM dsa_jobs.analysis_runs WHERE id = %s::uuid", (job_id,))
    return row


def progress(db, job_id):
    """progress is run_parameters->'progress' of the job (or None)."""
    v = db.scalar("SELECT run_parameters->'progress' FROM dsa_jobs.analysis_runs"
                  " WHERE id = %s::uuid", (job_id,))
    return v


def _same(a, b):
    """_same compares stored jsonb with the reference: jsonb keeps numbers as numeric, so
    -0.0 reads back as 0 and 1.7976931348623157e+308 as its digits; numbers compare by value
    (the row_hash still checks the canonical text byte for byte)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b or float(a) == float(b)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


def assert_matches_reference(db, commit_id, expected):
    """assert_matches_reference checks a commit against refreader output, key by key.

    Logical ids must be the same set; every row's data equal; every row_hash the XXH3-128
    of the canonical JSON (when libxxhash is available); identical rows share one hash."""
    got = commit_data(db, commit_id)
    missing = sorted(set(expected) - set(got))[:5]
    extra = sorted(set(got) - set(expected))[:5]
    assert not missing and not extra, "logical ids differ: missing %s, extra %s (%d vs %d)" % (
        missing, extra, len(expected), len(got))
    by_text = {}
    for lid, row in expected.items():
        h, data = got[lid]
        assert _same(data, row), "%s: stored %r, expected %r" % (lid, data, row)
        assert len(h) == 32 and h == h.lower() and all(c in "0123456789abcdef" for c in h), \
            "%s: row_hash %r is not 32 lowercase hex" % (lid, h)
        want = refreader.row_hash(row)
        if want is not None:
            assert h == want, "%s: row_hash %s, expected XXH3-128 %s of %s" % (
                lid, h, want, refreader.canonical_json(row))
        by_text.setdefault(refreader.canonical_json(row), set()).add(h)
    for text, hashes in by_text.items():
        assert len(hashes) == 1, "identical rows got different hashes %s: %s" % (hashes, text)


def assert_no_trace_of_failed_job(db, dataset, job_row):
    """assert_no_trace_of_failed_job: no ref, and the job's commit and manifest are gone."""
    assert ref_head(db, dataset) is None, "a failed import created or moved the ref"
    ds = dataset_id(db, dataset)
    if ds is not None:
        n = db.scalar("SELECT count(*) FROM dsa_core.commits WHERE dataset_id = %s", (ds,))
        assert n == 0, "failed import left %d commit(s)" % n
    commit_id = None
    prog = ((job_row or {}).get("run_parameters") or {}).get("progress") or {}
    commit_id = (prog.get("checkpoint") or {}).get("commit_id")
    if commit_id:
        n = db.scalar("SELECT count(*) FROM dsa_core.commit_rows WHERE commit_id = %s", (commit_id,))
        assert n == 0, "failed import left %d commit_rows for %s" % (n, commit_id)
        assert commit(db, commit_id) is None, "failed import left its commit %s" % commit_id
    total = db.scalar("SELECT count(*) FROM dsa_core.commit_rows")
    assert total == 0, "commit_rows not empty after the only import failed (%d)" % total


def wait_client_sessions_gone(db, timeout=30):
    """wait_client_sessions_gone waits until no other client backend is connected to db, so a
    COMMIT a killed client sent just before dying is either visible now or never."""
    db.wait_for("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND pid <> pg_backend_pid() AND backend_type = 'client backend'",
                predicate=lambda n: n == 0, timeout=timeout)


def checkpoint_rows(prog, table="primary", first_row=2):
    """checkpoint_rows is the set of logical ids a single-table checkpoint says are in: every
    row before its watermark (row_number) and the finished ranges beyond it (batches loaded
    in parallel commit out of order)."""
    cp = prog.get("checkpoint") or {}
    want = {"%s:%d" % (table, n) for n in range(first_row, cp.get("row_number") or first_row)}
    for seg in cp.get("finished") or []:
        want |= {"%s:%d" % (seg["table_key"], n) for n in range(seg["from"], seg["to"])}
    return want


def assert_checkpoint_consistent(db, job_id, table="primary", first_row=2):
    """assert_checkpoint_consistent: the job's manifest holds exactly the rows its checkpoint
    describes (checkpoint_rows) and counts (rows_processed), no others; returns the progress.

    Call it when no process writes the job (after a kill, once its sessions are gone)."""
    prog = progress(db, job_id) or {}
    done = prog.get("rows_processed") or 0
    commit_id = (prog.get("checkpoint") or {}).get("commit_id")
    if done == 0:
        if commit_id:
            n = db.scalar("SELECT count(*) FROM dsa_core.commit_rows WHERE commit_id = %s",
                          (commit_id,))
            assert n == 0, "checkpoint counts no rows but the manifest has %d" % n
        return prog
    assert commit_id, "progress has rows but no checkpoint.commit_id: %s" % prog
    have = set(manifest(db, commit_id))
    want = checkpoint_rows(prog, table, first_row)
    assert len(want) == done, "checkpoint counts %d rows but describes %d: %s" % (
        done, len(want), prog["checkpoint"])
    assert have == want, "manifest (%d rows) is not the checkpoint's %d rows: %d extra, %d missing" % (
        len(have), done, len(have - want), len(want - have))
    return prog
