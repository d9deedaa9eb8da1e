"""media_files (files multimodal processing made, kept for a while), jobs.result

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-01 16:30:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("result", sa.JSON(), nullable=True))
    op.create_table(
        "media_files",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("bot_id", sa.String(length=40), nullable=True),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("media_type", sa.String(length=128), nullable=False),
        sa.Column("size_bytes", sa.Integer(), nullable=False),
        sa.Column("source_name", sa.String(length=512), nullable=False),
        sa.Column("metadata", sa.JSON(), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_media_files_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_media_files")),
    )
    op.create_index(op.f("ix_media_files_account_id"), "media_files", ["account_id"], unique=False)
    op.create_index(op.f("ix_media_files_expires_at"), "media_files", ["expires_at"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_media_files_expires_at"), table_name="media_files")
    op.drop_index(op.f("ix_media_files_account_id"), table_name="media_files")
    op.drop_table("media_files")
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_column("result")
