"""sessions (api_keys.kind), files and their dataset attachments, skillsets and abilities,
bots.skillset_id

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-25 14:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.add_column(sa.Column("kind", sa.String(length=16), server_default="key", nullable=False))
    with op.batch_alter_table("bots", schema=None) as batch_op:
        batch_op.add_column(sa.Column("skillset_id", sa.String(length=40), nullable=True))
    # No foreign key (it would rebuild bots on SQLite): core.skillsets clears it.
    op.create_index(op.f("ix_bots_skillset_id"), "bots", ["skillset_id"], unique=False)
    op.create_table(
        "files",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=512), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("metadata", sa.JSON(), nullable=False),
        sa.Column("media_type", sa.String(length=128), nullable=True),
        sa.Column("size_bytes", sa.Integer(), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=True),
        sa.Column("content", sa.LargeBinary(), nullable=True),
        sa.Column("upload_digest", sa.String(length=64), nullable=True),
        sa.Column("upload_size", sa.Integer(), nullable=True),
        sa.Column("upload_type", sa.String(length=128), nullable=True),
        sa.Column("upload_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_files_account_id_accounts"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_files")),
    )
    op.create_index(op.f("ix_files_account_id"), "files", ["account_id"], unique=False)
    op.create_table(
        "dataset_files",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("knowledge_base_id", sa.String(length=40), nullable=False),
        sa.Column("file_id", sa.String(length=40), nullable=False),
        sa.Column("document_id", sa.String(length=40), nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_dataset_files_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["document_id"],
            ["documents.id"],
            name=op.f("fk_dataset_files_document_id_documents"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["file_id"], ["files.id"], name=op.f("fk_dataset_files_file_id_files"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["knowledge_base_id"],
            ["knowledge_bases.id"],
            name=op.f("fk_dataset_files_knowledge_base_id_knowledge_bases"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dataset_files")),
        sa.UniqueConstraint("knowledge_base_id", "file_id", name="uq_dataset_files_base_file"),
    )
    op.create_index(op.f("ix_dataset_files_account_id"), "dataset_files", ["account_id"], unique=False)
    op.create_index(op.f("ix_dataset_files_file_id"), "dataset_files", ["file_id"], unique=False)
    op.create_table(
        "skillsets",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=256), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("metadata", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_skillsets_account_id_accounts"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_skillsets")),
    )
    op.create_index(op.f("ix_skillsets_account_id"), "skillsets", ["account_id"], unique=False)
    op.create_table(
        "abilities",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("skillset_id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=256), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("instruction", sa.Text(), nullable=False),
        sa.Column("metadata", sa.JSON(), nullable=False),
        sa.Column("linked_bot_id", sa.String(length=40), nullable=True),
        sa.Column("linked_file_id", sa.String(length=40), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_abilities_account_id_accounts"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["skillset_id"],
            ["skillsets.id"],
            name=op.f("fk_abilities_skillset_id_skillsets"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_abilities")),
    )
    op.create_index(op.f("ix_abilities_account_id"), "abilities", ["account_id"], unique=False)
    op.create_index(op.f("ix_abilities_skillset_id"), "abilities", ["skillset_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_abilities_skillset_id"), table_name="abilities")
    op.drop_index(op.f("ix_abilities_account_id"), table_name="abilities")
    op.drop_table("abilities")
    op.drop_index(op.f("ix_skillsets_account_id"), table_name="skillsets")
    op.drop_table("skillsets")
    op.drop_index(op.f("ix_dataset_files_file_id"), table_name="dataset_files")
    op.drop_index(op.f("ix_dataset_files_account_id"), table_name="dataset_files")
    op.drop_table("dataset_files")
    op.drop_index(op.f("ix_files_account_id"), table_name="files")
    op.drop_table("files")
    op.drop_index(op.f("ix_bots_skillset_id"), table_name="bots")
    with op.batch_alter_table("bots", schema=None) as batch_op:
        batch_op.drop_column("skillset_id")
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.drop_column("kind")
