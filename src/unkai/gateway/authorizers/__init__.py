"""Authorizers the gateway runs itself, before invoking a route's function."""
