"""Shared parts of the benchmarks: processes, wrk, /proc memory, unkai's control API, results.

Each `bench/<name>.py` puts `bench/` on `sys.path` (it runs as a script), so `import harness`
works without installing anything.
"""
