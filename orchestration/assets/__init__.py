"""Dagster assets: raw ingest, dbt models, (later) ML and reports."""
