"""Test harness for dsa-ingest's integration tests and benchmark.

Each module wraps one real server or one independent oracle, so the tests can
check the C binary against things that share none of its code:
  pg          a private PostgreSQL cluster (initdb/pg_ctl) and per-test databases
  httpserver  an HTTP/1.1 object server with HEAD, Range, ETag, If-Match and a request log
  faultproxy  a TCP proxy that cuts, stalls, throttles or refuses connections
  refreader   Python's csv module + DESIGN section 2 rules: the expected rows
  runner      runs the binary (foreground or background) with timeouts
  gen         deterministic CSV generators shared by the tests and the benchmark
"""
