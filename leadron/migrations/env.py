"""Alembic environment: runs on the connection leadron.metadata.upgrade hands it (no alembic.ini)."""

from alembic import context

from leadron.metadata import META

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=META, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
