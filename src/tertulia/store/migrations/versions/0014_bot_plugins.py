"""bot_plugins: the settings of the tools installed on a bot (ChatAgent's plugins)

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-01 16:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "bot_plugins",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("bot_id", sa.String(length=40), nullable=False),
        sa.Column("plugin_id", sa.String(length=64), nullable=False),
        sa.Column("config", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_bot_plugins_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["bot_id"], ["bots.id"], name=op.f("fk_bot_plugins_bot_id_bots"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bot_plugins")),
        sa.UniqueConstraint("bot_id", "plugin_id", name="uq_bot_plugins_bot_plugin"),
    )
    op.create_index(op.f("ix_bot_plugins_account_id"), "bot_plugins", ["account_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_bot_plugins_account_id"), table_name="bot_plugins")
    op.drop_table("bot_plugins")
