"""Leadron Analytics orchestration: settings, landing zone, Dagster assets and the `leadron` CLI."""
