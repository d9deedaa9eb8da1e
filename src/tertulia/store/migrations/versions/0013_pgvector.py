"""chunk_vectors: knowledge vectors in pgvector, where PostgreSQL has it

Only on a PostgreSQL where the `vector` extension is available and this user may create it;
elsewhere (SQLite, a PostgreSQL without pgvector) nothing changes and the numpy index serves.
Like the full-text index, the table is the migrations' own and not described by the models.
Existing chunks' vectors are copied in, with an HNSW index per size. The work is
store.pgvector.enable, which every later `tertulia migrate` runs again (a no-op once done),
so a pgvector installed after this revision is taken up then.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-01 15:00:00.000000
"""

from alembic import op

from tertulia.store import pgvector

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pgvector.enable(op.get_bind())


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TABLE IF EXISTS chunk_vectors")
