"""s3:// sources against a real local S3 server (npm's s3rver behind tests/s3/server.js,
which checks every SigV4 signature), on 127.0.0.1 only.

What is proved, each against the reference reader or the server's own request log:
signed plain and gzipped imports; keys that need escaping; a wrong secret, an unknown key,
a wrong session token, a missing object or bucket → exit 2 with a plain message and no
secret anywhere; session tokens signed; profiles from the shared files; cuts, a stall and
503 SlowDown through the fault proxy; an object overwritten mid-import → exit 1 "changed"
(with and without a server that honours If-Match); resume after the server went away; and
web identity, IMDSv2 and container credentials from a local fake, refreshed before they
expire during a long import. AWS_EC2_METADATA_DISABLED or a local metadata endpoint is set
in every run: nothing here may try 169.254.169.254.
"""
import hashlib
import time

import pytest

from harness import checks, gen, refreader
from harness.awsfake import AwsFake
from harness.faultproxy import FaultProxy
from harness.runner import Runner, scale, timeout_factor
from harness.s3server import S3Server, availability

BUCKET = "data"
USER = ("AKIDSAUSER00000001", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYzEXAMPLE/Key")
FAST_RETRIES = {"IMPORT_MAX_RETRIES": "50", "IMPORT_RETRY_BACKOFF_MS": "50"}

# Every AWS setting a developer's shell or a CI machine might carry, scrubbed from each run.
_AWS_VARS = [
    "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL_STS", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
    "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN", "AWS_ROLE_SESSION_NAME",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN", "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
    "AWS_EC2_METADATA_SERVICE_ENDPOINT", "AWS_EC2_METADATA_DISABLED",
    "AWS_METADATA_SERVICE_TIMEOUT", "AWS_METADATA_SERVICE_NUM_ATTEMPTS",
    "AWS_SHARED_CREDENTIALS_FILE", "AWS_CONFIG_FILE", "DSA_INGEST_AWS_REFRESH_MARGIN"]


# -- fixtures ---------------------------------------------------------------------------

# What a developer's shell might carry that would change what the binary does.
_SCRUBBED = ["DATABASE_URL", "PGHOST", "PGPORT", "PGDATABASE", "PGUSER", "PGPASSWORD",
             "PGSERVICE", "IMPORT_BATCH_SIZE", "IMPORT_CHUNK_SIZE", "IMPORT_STALL_TIMEOUT",
             "IMPORT_MAX_RETRIES", "IMPORT_RETRY_BACKOFF_MS", "IMPORT_RETRY_MAX_SECONDS",
             "IMPORT_DB_RETRIES",
             "http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "all_proxy",
             "NO_PROXY", "no_proxy"]


@pytest.fixture(scope="module")
def s3():
    """s3 is the module's S3 server with bucket `data` and the USER key; tests use own keys."""
    reason = availability()
    if reason:
        pytest.skip("S3 tests need the local S3 server: %s" % reason)
    server = S3Server(buckets=[BUCKET]).start()
    server.add_key(*USER)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def s3db(pg, s3):
    """s3db is one migrated database for the whole module (migrating per test would double
    the run time); tests keep apart by dataset name and object key."""
    database = pg.create_database("s3")
    try:
        yield database
    finally:
        database.close()


@pytest.fixture(scope="module")
def s3ingest(binary, s3db):
    """s3ingest runs the binary against s3db, migrated once; background runs are killed after."""
    env = {k: None for k in _SCRUBBED}
    env.update(DATABASE_URL=s3db.url, NO_COLOR="1")
    runner = Runner(binary, env)
    res = runner.run("migrate", timeout=120)
    assert res.code == 0, "migrate failed: %r" % res
    try:
        yield runner
    finally:
        runner.kill_all()


@pytest.fixture
def own_server(s3):
    """own_server starts extra servers (If-Match, SlowDown) stopped after the test."""
    started = []

    def start(**kw):
        srv = S3Server(buckets=[BUCKET], **kw).start()
        srv.add_key(*USER)
        started.append(srv)
        return srv
    try:
        yield start
    finally:
        for srv in started:
            srv.stop()


@pytest.fixture
def proxy_for():
    """proxy_for(server) puts a fault proxy in front of an S3 server, stopped after the test."""
    proxies = []

    def start(server):
        p = FaultProxy(server.port).start()
        proxies.append(p)
        return p
    try:
        yield start
    finally:
        for p in proxies:
            p.stop()


@pytest.fixture
def fake(s3):
    """fake is the local STS/IMDS/container endpoint; what it issues the S3 server accepts."""
    f = AwsFake(lifetime=3600, on_issue=lambda ak, sk, tok, exp: s3.add_key(ak, sk, tok, exp)).start()
    try:
        yield f
    finally:
        f.stop()


def aws_env(tmp_path, endpoint, creds=USER, **extra):
    """aws_env is a clean AWS environment: only what the test sets, no instance metadata."""
    env = {k: None for k in _AWS_VARS}
    env.update(FAST_RETRIES)
    env["AWS_EC2_METADATA_DISABLED"] = "true"
    env["AWS_SHARED_CREDENTIALS_FILE"] = str(tmp_path / "no-credentials")
    env["AWS_CONFIG_FILE"] = str(tmp_path / "no-config")
    env["AWS_ENDPOINT_URL"] = endpoint
    if creds:
        env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"] = creds
    env.update(extra)
    return env


def put_people(server, key, n, compress=False, seed=31):
    """put_people stores n generated rows under key; returns (stored bytes, expected rows)."""
    data = gen.csv_bytes(list(gen.people_rows(n, seed=seed)))
    expected = refreader.read_records(data)
    if compress:
        data = gen.gzip_bytes(data)
    server.put_object(BUCKET, key, data)
    return data, expected


def run_import(ingest, key, dataset, env, timeout=240):
    return ingest.run("import", "s3://%s/%s" % (BUCKET, key), "--dataset", dataset, "--json",
                      env=env, timeout=timeout)


def imported(ingest, s3db, key, dataset, env, expected):
    """imported runs an import that must succeed and match the reference; returns its JSON."""
    res = run_import(ingest, key, dataset, env)
    assert res.code == 0, res
    out = res.json()
    checks.assert_matches_reference(s3db, out["commit_id"], expected)
    assert checks.ref_head(s3db, dataset) == out["commit_id"]
    return out


def all_job_text(s3db):
    """all_job_text is every job row as text: secrets must never be in it."""
    rows = s3db.query("SELECT run_parameters::text AS p, coalesce(output_summary::text, '') AS o,"
                    " coalesce(error_message, '') AS e FROM dsa_jobs.analysis_runs")
    return "\n".join("%s %s %s" % (r["p"], r["o"], r["e"]) for r in rows)


def no_secret(res, s3db, *secrets):
    for s in secrets:
        assert s not in res.stdout and s not in res.stderr, "a secret reached the output"
        assert s not in all_job_text(s3db), "a secret reached a job row"


# -- signing and plain reads --------------------------------------------------------------

@pytest.mark.parametrize("compress", [False, True], ids=["csv", "gzip"])
def test_signed_import_equals_reference(s3ingest, s3db, s3, tmp_path, compress):
    key = "plain/people.csv.gz" if compress else "plain/people.csv"
    data, expected = put_people(s3, key, int(3000 * scale()), compress)
    out = imported(s3ingest, s3db, key, "plain", aws_env(tmp_path, s3.endpoint), expected)
    gets = s3.requests(key, "GET")
    assert gets and all(g["accessKey"] == USER[0] and g["status"] in (200, 206) for g in gets), gets
    assert all(g["region"] == "us-east-1" for g in gets), "signed for another region: %s" % gets
    assert not s3.requests(key, "HEAD"), "no HEAD: the first GET pins size and ETag"
    progress = checks.job(s3db, out["job_id"])["run_parameters"]["progress"]
    assert progress["bytes_total"] == len(data), progress
    src = progress["checkpoint"]["source"]
    assert src["url"] == "s3://data/" + key, src
    assert src["etag"] == '"%s"' % hashlib.md5(data).hexdigest() and src["size"] == len(data), src


@pytest.mark.parametrize("key", [
    "with space/data file.csv",
    "ünïcödé/データ.csv",
    "a+b=c/x+y=z.csv",
    "odd!'()*&$@,;:~/q.csv",
], ids=["space", "unicode", "plus-equals", "reserved"])
def test_keys_that_need_escaping(s3ingest, s3db, s3, tmp_path, key):
    _, expected = put_people(s3, key, 200, seed=len(key))
    imported(s3ingest, s3db, key, "escaped", aws_env(tmp_path, s3.endpoint), expected)
    assert [g["status"] for g in s3.requests(key, "GET")] == [200]


# -- permanent errors -----------------------------------------------------------------------

def test_wrong_secret_is_refused(s3ingest, s3db, s3, tmp_path):
    key = "err/secret.csv"
    put_people(s3, key, 50)
    wrong = USER[1][:-4] + "XXXX"
    res = run_import(s3ingest, key, "wrongsecret", aws_env(tmp_path, s3.endpoint, (USER[0], wrong)))
    assert res.code == 2, res
    assert "signature was rejected for s3://data/err/secret.csv" in res.stderr, res
    assert "check the secret access key" in res.stderr and "environment" in res.stderr, res
    s3.wait_settled()
    codes = [g.get("code") for g in s3.requests(key, "GET")]
    assert codes == ["SignatureDoesNotMatch"], "the server must have checked the signature: %s" % codes
    no_secret(res, s3db, wrong, USER[1])
    assert checks.ref_head(s3db, "wrongsecret") is None


def test_unknown_access_key_and_anonymous(s3ingest, s3db, s3, tmp_path):
    key = "err/anon.csv"
    put_people(s3, key, 50)
    res = run_import(s3ingest, key, "unknown", aws_env(tmp_path, s3.endpoint, ("AKIANOSUCHKEY", "x")))
    assert res.code == 2 and "access key id is not known" in res.stderr, res
    res = run_import(s3ingest, key, "anon", aws_env(tmp_path, s3.endpoint, creds=None))
    assert res.code == 2, res
    assert "access denied to s3://data/err/anon.csv" in res.stderr, res
    assert "unsigned" in res.stderr, res


def test_missing_object_and_bucket(s3ingest, s3db, s3, tmp_path):
    env = aws_env(tmp_path, s3.endpoint)
    res = run_import(s3ingest, "err/nothing-here.csv", "missing", env)
    assert res.code == 2 and "no such object s3://data/err/nothing-here.csv" in res.stderr, res
    res = s3ingest.run("import", "s3://no-such-bucket/x.csv", "--dataset", "missing", env=env)
    assert res.code == 2 and 'no such bucket "no-such-bucket"' in res.stderr, res
    res = s3ingest.run("import", "s3://data/", "--dataset", "missing", env=env)
    assert res.code == 2 and "names a bucket, not an object" in res.stderr, res
    assert checks.ref_head(s3db, "missing") is None


def test_session_token_is_sent_and_signed(s3ingest, s3db, s3, tmp_path):
    key = "token/people.csv"
    _, expected = put_people(s3, key, 300)
    tmp = ("ASIATEMPORARY000001", "temporary/secret+key", "IQoJb3JpZ2luX2VjEXAMPLE//token==")
    s3.add_key(*tmp)
    env = aws_env(tmp_path, s3.endpoint, tmp[:2], AWS_SESSION_TOKEN=tmp[2])
    imported(s3ingest, s3db, key, "token", env, expected)
    gets = s3.requests(key, "GET")
    assert gets and all(g["token"] and g["accessKey"] == tmp[0] for g in gets), gets
    env["AWS_SESSION_TOKEN"] = "not-the-token"
    res = run_import(s3ingest, key, "badtoken", env)
    assert res.code == 2 and "session token was rejected" in res.stderr, res
    no_secret(res, s3db, tmp[1], tmp[2])


# -- shared files ----------------------------------------------------------------------------

def test_profile_from_credentials_and_config_files(s3ingest, s3db, s3, tmp_path):
    key = "profile/people.csv"
    _, expected = put_people(s3, key, 300)
    creds = tmp_path / "credentials"
    creds.write_text("[default]\naws_access_key_id = AKIADEFAULTWRONG\naws_secret_access_key = defaultWrongSecret123\n\n"
                     "# the one to use\n[dev]\naws_access_key_id = %s\naws_secret_access_key = %s\n"
                     % USER)
    config = tmp_path / "config"
    config.write_text("[default]\nregion = us-east-1\n\n[profile dev]\nregion = eu-west-1\n"
                      "s3 =\n    addressing_style = path\n\n"
                      "[profile cfgonly]\naws_access_key_id = %s\naws_secret_access_key = %s\n" % USER)
    env = aws_env(tmp_path, s3.endpoint, creds=None, AWS_SHARED_CREDENTIALS_FILE=str(creds),
                  AWS_CONFIG_FILE=str(config), AWS_PROFILE="dev")
    imported(s3ingest, s3db, key, "profile", env, expected)
    gets = s3.requests(key, "GET")
    assert gets[-1]["accessKey"] == USER[0] and gets[-1]["region"] == "eu-west-1", gets
    env["AWS_PROFILE"] = "cfgonly"
    imported(s3ingest, s3db, key, "profile", env, expected)
    env["AWS_PROFILE"] = "nope"
    res = run_import(s3ingest, key, "profile", env)
    assert res.code == 2 and 'profile "nope"' in res.stderr, res
    env.pop("AWS_PROFILE")
    res = run_import(s3ingest, key, "default", env)
    assert res.code == 2 and 'from profile "default" in %s' % creds in res.stderr, res
    no_secret(res, s3db, USER[1], "defaultWrongSecret123")


# -- faults through the proxy -------------------------------------------------------------------

def test_cuts_stall_and_slowdown(s3ingest, s3db, own_server, proxy_for, tmp_path):
    srv = own_server(slowdown_every=4)
    key = "faults/people.csv.gz"
    data, expected = put_people(srv, key, int(25000 * scale()), compress=True, seed=33)
    proxy = proxy_for(srv)
    cut = max(16 * 1024, len(data) // 5)
    proxy.configure(cut_every=cut, stall_after=len(data) // 2, stall_seconds=30.0)
    env = aws_env(tmp_path, "http://127.0.0.1:%d" % proxy.port, IMPORT_STALL_TIMEOUT="2")
    t0 = time.monotonic()
    imported(s3ingest, s3db, key, "faults", env, expected)
    assert time.monotonic() - t0 < 25 * timeout_factor(), "the stall was waited out"
    c = proxy.counters()
    assert c["stalls"] == 1 and c["cuts"] >= max(1, len(data) // cut - 1), c
    gets = srv.requests(key, "GET")
    assert sum(1 for g in gets if g.get("code") == "SlowDown") >= 1, gets
    etag = '"%s"' % hashlib.md5(data).hexdigest()
    resumed = [g for g in gets[1:] if g["status"] == 206]
    assert len(resumed) >= c["cuts"], (c, gets)
    assert all(g["range"] and g["ifMatch"] == etag for g in gets[1:]), gets


@pytest.mark.parametrize("mode", ["etag-compare", "shrunk", "412"])
def test_object_overwritten_mid_import(s3ingest, s3db, s3, own_server, proxy_for, tmp_path, mode):
    """Overwritten mid-import: a longer object is caught by comparing the ETag of the resumed
    response (s3rver ignores If-Match), a shorter one by its 416, and with a server that honours
    If-Match by the 412. Each time: exit 1, "object changed", no ref."""
    srv = own_server(if_match=True) if mode == "412" else s3
    key = "changing/people-%s.csv" % mode
    data, _ = put_people(srv, key, int(15000 * scale()), seed=34)
    proxy = proxy_for(srv)
    proxy.configure(throttle=len(data) // 4)
    env = aws_env(tmp_path, "http://127.0.0.1:%d" % proxy.port, IMPORT_BATCH_SIZE="500")
    bg = s3ingest.start("import", "s3://%s/%s" % (BUCKET, key), "--dataset", "changing", env=env)
    job_id = bg.wait_job_id()
    deadline = time.monotonic() + 30 * timeout_factor()
    while proxy.counters()["bytes_forwarded"] < len(data) // 5 and time.monotonic() < deadline:
        time.sleep(0.05)
    n = 100 if mode == "shrunk" else int(20000 * scale())
    srv.put_object(BUCKET, key, gen.csv_bytes(list(gen.people_rows(n, seed=99))))
    proxy.configure(throttle=None, cut_at_total=proxy.counters()["bytes_forwarded"] + 8192)
    res = bg.wait(timeout=120)
    assert proxy.counters()["cuts"] >= 1, proxy.counters()
    assert res.code == 1, res
    assert "object changed" in res.stderr and "s3://data/" + key in res.stderr, res
    assert checks.ref_head(s3db, "changing") is None
    row = checks.job(s3db, job_id)
    assert row["status"] == "failed" and "changed" in row["error_message"], row
    srv.wait_settled()
    want = {"etag-compare": None, "shrunk": "InvalidRange", "412": "PreconditionFailed"}[mode]
    codes = [g.get("code") for g in srv.requests(key, "GET")]
    assert codes[-1] == want, codes


def test_resume_after_the_server_went_away(s3ingest, s3db, s3, proxy_for, tmp_path):
    key = "resume/people.csv"
    data, expected = put_people(s3, key, int(20000 * scale()), seed=35)
    proxy = proxy_for(s3)
    proxy.configure(cut_at_total=len(data) // 2, down_after_cuts=1)
    env = aws_env(tmp_path, "http://127.0.0.1:%d" % proxy.port, IMPORT_MAX_RETRIES="2",
                  IMPORT_RETRY_BACKOFF_MS="100", IMPORT_BATCH_SIZE="1000", IMPORT_DB_RETRIES="0")
    bg = s3ingest.start("import", "s3://%s/%s" % (BUCKET, key), "--dataset", "resumed", "--json",
                        env=env)
    job_id = bg.wait_job_id()
    res = bg.wait(timeout=120)
    assert res.code == 3, res
    proxy.configure(down=False, down_after_cuts=None)
    before = len(s3.requests(key, "GET"))
    again = s3ingest.run("import", "--resume", job_id, "--json", env=env, timeout=180)
    assert again.code == 0, again
    out = again.json()
    checks.assert_matches_reference(s3db, out["commit_id"], expected)
    first = s3.requests(key, "GET")[before]
    start = int(first["range"].split("=")[1].split("-")[0]) if first["range"] else 0
    assert start > 0, "the resumed job re-read from byte 0: %s" % first
    assert first["ifMatch"] == '"%s"' % hashlib.md5(data).hexdigest(), first


# -- temporary credentials from the local fake --------------------------------------------------

def long_import(s3ingest, s3db, s3, proxy_for, tmp_path, env_extra, seed):
    """long_import runs a ~3 s import made of many short GETs (throttled, cut every tenth)."""
    key = "refresh/people-%d.csv" % seed
    data, expected = put_people(s3, key, int(12000 * scale()), seed=seed)
    proxy = proxy_for(s3)
    proxy.configure(cut_every=max(8 * 1024, len(data) // 10), throttle=len(data) // 3)
    env = aws_env(tmp_path, "http://127.0.0.1:%d" % proxy.port, creds=None,
                  DSA_INGEST_AWS_REFRESH_MARGIN="1", **env_extra)
    imported(s3ingest, s3db, key, "refresh", env, expected)
    s3.wait_settled()
    return key, s3.requests(key, "GET")


def assert_refreshed(gets, issued, calls):
    """assert_refreshed: several credentials were fetched, each GET signed with one of them and
    accepted, none rejected as expired."""
    assert calls >= 2, "credentials were fetched %d time(s) during a long import" % calls
    used = {g["accessKey"] for g in gets if g["status"] in (200, 206)}
    assert len(used) >= 2 and used <= set(issued), (used, issued)
    assert all(g["token"] for g in gets), "a GET went without its session token"
    assert not [g for g in gets if g.get("code") in ("ExpiredToken", "InvalidAccessKeyId")], gets


def test_web_identity_refreshes_before_expiry(s3ingest, s3db, s3, fake, proxy_for, tmp_path):
    fake.lifetime = 3
    token = tmp_path / "token"
    token.write_text(fake.web_token + "\n")
    extra = {"AWS_WEB_IDENTITY_TOKEN_FILE": str(token), "AWS_ROLE_ARN": fake.role_arn,
             "AWS_ROLE_SESSION_NAME": "dsa-test", "AWS_ENDPOINT_URL_STS": fake.url}
    _, gets = long_import(s3ingest, s3db, s3, proxy_for, tmp_path, extra, seed=41)
    assert_refreshed(gets, fake.issued_keys("sts"), fake.calls["sts"])
    assert set(fake.sessions) == {"dsa-test"}, fake.sessions


def test_imds_v2_refreshes_before_expiry(s3ingest, s3db, s3, fake, proxy_for, tmp_path):
    fake.lifetime = 3
    extra = {"AWS_EC2_METADATA_DISABLED": None, "AWS_EC2_METADATA_SERVICE_ENDPOINT": fake.url}
    _, gets = long_import(s3ingest, s3db, s3, proxy_for, tmp_path, extra, seed=42)
    assert_refreshed(gets, fake.issued_keys("imds"), fake.calls["imds_creds"])
    assert fake.calls["imds_token"] >= fake.calls["imds_creds"] and fake.calls["refused"] == 0


def test_container_credentials(s3ingest, s3db, s3, fake, tmp_path):
    fake.container_token = "Bearer ecs-auth-token"
    key = "container/people.csv"
    _, expected = put_people(s3, key, 300, seed=43)
    env = aws_env(tmp_path, s3.endpoint, creds=None,
                  AWS_CONTAINER_CREDENTIALS_FULL_URI=fake.url + "/container/creds",
                  AWS_CONTAINER_AUTHORIZATION_TOKEN=fake.container_token)
    imported(s3ingest, s3db, key, "container", env, expected)
    assert fake.calls["container"] == 1 and s3.requests(key, "GET")[-1]["accessKey"] in \
        fake.issued_keys("container")
    env["AWS_CONTAINER_AUTHORIZATION_TOKEN"] = "Bearer wrong"
    res = run_import(s3ingest, key, "container2", env)
    assert res.code == 2 and "container credentials endpoint" in res.stderr, res
    no_secret(res, s3db, "ecs-auth-token")


def test_web_identity_refused_by_sts(s3ingest, s3db, s3, fake, tmp_path):
    fake.sts_error = (400, "InvalidIdentityToken", "Incorrect token audience")
    token = tmp_path / "token"
    token.write_text(fake.web_token)
    env = aws_env(tmp_path, s3.endpoint, creds=None, AWS_WEB_IDENTITY_TOKEN_FILE=str(token),
                  AWS_ROLE_ARN=fake.role_arn, AWS_ENDPOINT_URL_STS=fake.url)
    res = run_import(s3ingest, "refused.csv", "sts", env)
    assert res.code == 2, res
    assert "InvalidIdentityToken" in res.stderr and fake.role_arn in res.stderr, res
    no_secret(res, s3db, fake.web_token)
