"""numbers for bots and catalog models; chat sessions

Bots get a small server-wide number (existing bots numbered by creation), the models the
server can use get stable integer ids, and chats may start before their bot is known.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25 11:15:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("bots", schema=None) as batch_op:
        batch_op.add_column(sa.Column("number", sa.Integer(), nullable=True))
    op.execute(
        "UPDATE bots SET number = (SELECT COUNT(*) FROM bots AS earlier"
        " WHERE earlier.created_at < bots.created_at"
        " OR (earlier.created_at = bots.created_at AND earlier.id <= bots.id))"
    )
    # A unique index, not a constraint: SQLite adds it without rebuilding the table (a rebuild
    # would drop `bots`, and with foreign keys on, everything that cascades from it).
    op.create_index(op.f("ix_bots_number"), "bots", ["number"], unique=True)
    op.create_table(
        "catalog_models",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("provider", sa.String(length=64), nullable=False),
        sa.Column("model_id", sa.String(length=256), nullable=False),
        sa.Column("task_type", sa.String(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_catalog_models")),
        sa.UniqueConstraint(
            "provider", "model_id", "task_type", name="uq_catalog_models_provider_model_task"
        ),
    )
    op.create_table(
        "chats",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("bot_id", sa.String(length=40), nullable=True),
        sa.Column("conversation_id", sa.String(length=40), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_chats_account_id_accounts"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["bot_id"], ["bots.id"], name=op.f("fk_chats_bot_id_bots"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("fk_chats_conversation_id_conversations"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_chats")),
    )
    with op.batch_alter_table("chats", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_chats_account_id"), ["account_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_chats_bot_id"), ["bot_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("chats", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_chats_bot_id"))
        batch_op.drop_index(batch_op.f("ix_chats_account_id"))
    op.drop_table("chats")
    op.drop_table("catalog_models")
    op.drop_index(op.f("ix_bots_number"), table_name="bots")
    with op.batch_alter_table("bots", schema=None) as batch_op:
        batch_op.drop_column("number")
