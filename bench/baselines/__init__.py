"""Baseline servers, loaded by uvicorn with `--app-dir bench/baselines`."""
