"""The API's durable event log: records, SQLite schema, group-commit writer, sealer, status index."""
