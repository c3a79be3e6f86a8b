"""Event sources that run functions: schedules (queues, topics and streams come later)."""
