"""The metadata store: reports, schedules, runs (as create_all made them before migrations), deliveries, exports.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

STAMP = sa.String(40)


def upgrade() -> None:
    existing = set(sa.inspect(op.get_bind()).get_table_names())
    if "reports" not in existing:  # a store made by create_all before migrations already has the first three
        op.create_table(
            "reports",
            sa.Column("report_id", sa.String(64), primary_key=True),
            sa.Column("tenant_id", sa.String(64), nullable=False),
            sa.Column("definition", sa.Text, nullable=False),
            sa.Column("created_at", STAMP, nullable=False),
            sa.Column("updated_at", STAMP, nullable=False),
        )
        op.create_index("ix_reports_tenant_id", "reports", ["tenant_id"])
    if "report_schedules" not in existing:
        op.create_table(
            "report_schedules",
            sa.Column("schedule_id", sa.String(64), primary_key=True),
            sa.Column("report_id", sa.String(64), nullable=False),
            sa.Column("tenant_id", sa.String(64), nullable=False),
            sa.Column("schedule", sa.Text, nullable=False),
            sa.Column("created_at", STAMP, nullable=False),
            sa.Column("updated_at", STAMP, nullable=False),
        )
        op.create_index("ix_report_schedules_report_id", "report_schedules", ["report_id"])
    if "report_runs" not in existing:
        op.create_table(
            "report_runs",
            sa.Column("run_id", sa.String(64), primary_key=True),
            sa.Column("report_id", sa.String(64), nullable=False),
            sa.Column("tenant_id", sa.String(64), nullable=False),
            sa.Column("status", sa.String(16), nullable=False),
            sa.Column("created_at", STAMP, nullable=False),
            sa.Column("row_count", sa.Integer),
            sa.Column("rows", sa.Text),
            sa.Column("publication_version", STAMP),
            sa.Column("data_fresh_as_of", STAMP),
            sa.Column("error", sa.Text),
        )
        op.create_index("ix_report_runs_report_id", "report_runs", ["report_id"])
    op.create_table(
        "deliveries",
        sa.Column("delivery_id", sa.String(64), primary_key=True),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("report_id", sa.String(64), nullable=False),
        sa.Column("schedule_id", sa.String(64), nullable=False),
        sa.Column("due_at", STAMP, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("recipients", sa.Text),
        sa.Column("subject", sa.Text),
        sa.Column("formats", sa.Text),
        sa.Column("rows", sa.Integer),
        sa.Column("data_freshness_watermark", STAMP),
        sa.Column("publication_version", STAMP),
        sa.Column("sent_at", STAMP),
        sa.Column("error", sa.Text),
    )
    op.create_index("ix_deliveries_report", "deliveries", ["tenant_id", "report_id", "schedule_id"])
    op.create_table(
        "exports",
        sa.Column("export_id", sa.String(64), primary_key=True),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("request", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("rows", sa.Integer),
        sa.Column("path", sa.Text),
        sa.Column("object_key", sa.Text),
        sa.Column("url", sa.Text),
        sa.Column("data_freshness_watermark", STAMP),
        sa.Column("error", sa.Text),
        sa.Column("created_at", STAMP, nullable=False),
        sa.Column("finished_at", STAMP),
    )
    op.create_index("ix_exports_tenant_status", "exports", ["tenant_id", "status", "created_at"])


def downgrade() -> None:
    op.drop_table("exports")
    op.drop_table("deliveries")
