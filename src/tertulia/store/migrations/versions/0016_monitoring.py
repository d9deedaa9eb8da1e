"""monitoring: request records, account logs, and the running server processes

New tables only (nothing existing is altered, so SQLite rebuilds no table). Request records
and log entries carry no foreign key: they are written in batches, after the fact, and a
batch must not fail on an account deleted meanwhile; the retention prunes them.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-01 17:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "request_records",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("account_id", sa.String(length=40), nullable=True),
        sa.Column("face", sa.String(length=16), nullable=False),
        sa.Column("method", sa.String(length=16), nullable=False),
        sa.Column("route", sa.String(length=256), nullable=False),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("duration_ms", sa.Float(), nullable=False),
        sa.Column("request_id", sa.String(length=128), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_request_records")),
    )
    with op.batch_alter_table("request_records", schema=None) as batch_op:
        batch_op.create_index(
            "ix_request_records_account_created", ["account_id", "created_at"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_request_records_created_at"), ["created_at"], unique=False)

    op.create_table(
        "log_entries",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("account_id", sa.String(length=40), nullable=True),
        sa.Column("level", sa.String(length=16), nullable=False),
        sa.Column("level_number", sa.Integer(), nullable=False),
        sa.Column("module", sa.String(length=64), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("request_id", sa.String(length=128), nullable=True),
        sa.Column("details", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_log_entries")),
    )
    with op.batch_alter_table("log_entries", schema=None) as batch_op:
        batch_op.create_index("ix_log_entries_account_created", ["account_id", "created_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_log_entries_created_at"), ["created_at"], unique=False)

    op.create_table(
        "server_processes",
        sa.Column("id", sa.String(length=128), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("in_flight", sa.Integer(), nullable=False),
        sa.Column("websockets", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_server_processes")),
    )


def downgrade() -> None:
    op.drop_table("server_processes")

    with op.batch_alter_table("log_entries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_log_entries_created_at"))
        batch_op.drop_index("ix_log_entries_account_created")

    op.drop_table("log_entries")

    with op.batch_alter_table("request_records", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_request_records_created_at"))
        batch_op.drop_index("ix_request_records_account_created")

    op.drop_table("request_records")
