"""knowledge bases: chunking strategy

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 11:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("knowledge_bases", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("chunking_strategy", sa.String(length=16), nullable=False, server_default="structured")
        )


def downgrade() -> None:
    with op.batch_alter_table("knowledge_bases", schema=None) as batch_op:
        batch_op.drop_column("chunking_strategy")
