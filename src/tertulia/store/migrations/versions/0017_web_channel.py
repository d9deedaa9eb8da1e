"""The web channel: a bot's widget settings, and conversations found by their visitor

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-01 20:30:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable without a server default: alembic cannot compare a JSON default on PostgreSQL.
    op.add_column("bots", sa.Column("widget", sa.JSON(), nullable=True))
    op.create_index("ix_conversations_bot_visitor", "conversations", ["bot_id", "visitor_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_conversations_bot_visitor", table_name="conversations")
    with op.batch_alter_table("bots") as batch:
        batch.drop_column("widget")
