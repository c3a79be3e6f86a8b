"""Access to routes: API keys and usage-plan quotas (core)."""
