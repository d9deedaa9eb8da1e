"""chunk_vectors: knowledge vectors in pgvector, where PostgreSQL has it

Only on a PostgreSQL where the `vector` extension is available and this user may create it;
elsewhere (SQLite, a PostgreSQL without pgvector) nothing changes and the numpy index serves.
Like the full-text index, the table is the migrations' own and not described by the models
(see store.pgvector). Existing chunks' vectors are copied in, with an HNSW index per size.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01 15:00:00.000000
"""

import logging

import numpy as np
from alembic import op
from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

log = logging.getLogger(__name__)

BACKFILL_BATCH = 1000
MAX_INDEXED_DIMENSIONS = 2000


def upgrade() -> None:
    connection = op.get_bind()
    if connection.dialect.name != "postgresql" or not _vector_extension(connection):
        return
    op.execute(
        "CREATE TABLE chunk_vectors ("
        " chunk_id integer PRIMARY KEY REFERENCES chunks (id) ON DELETE CASCADE,"
        " knowledge_base_id varchar(40) NOT NULL,"
        " dims integer NOT NULL,"
        " embedding vector NOT NULL)"
    )
    op.execute("CREATE INDEX chunk_vectors_base_dims ON chunk_vectors (knowledge_base_id, dims)")
    sizes = _copy_existing_vectors(connection)
    for size in sorted(sizes):
        if size <= MAX_INDEXED_DIMENSIONS:
            # The same statement as store.pgvector.index_statement, frozen here.
            op.execute(
                f"CREATE INDEX IF NOT EXISTS chunk_vectors_hnsw_{size} ON chunk_vectors "
                f"USING hnsw ((embedding::vector({size})) vector_cosine_ops) WHERE dims = {size}"
            )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TABLE IF EXISTS chunk_vectors")


def _vector_extension(connection: Connection) -> bool:
    available = connection.scalar(text("SELECT count(*) FROM pg_available_extensions WHERE name = 'vector'"))
    if not available:
        return False
    try:
        with connection.begin_nested():
            connection.execute(text("CREATE EXTENSION IF NOT EXISTS vector"))
    except DBAPIError as error:  # available but not ours to install: stay on the numpy index
        log.warning("pgvector is installed on this server but could not be enabled: %s", error)
        return False
    return True


def _copy_existing_vectors(connection: Connection) -> set[int]:
    sizes: set[int] = set()
    last_id = 0
    while True:
        rows = connection.execute(
            text(
                "SELECT id, knowledge_base_id, embedding FROM chunks "
                "WHERE embedding IS NOT NULL AND id > :last ORDER BY id LIMIT :batch"
            ),
            {"last": last_id, "batch": BACKFILL_BATCH},
        ).all()
        if not rows:
            return sizes
        values = []
        for row in rows:
            vector = np.frombuffer(row.embedding, dtype="<f4")
            sizes.add(len(vector))
            literal = "[" + ",".join(repr(float(value)) for value in vector) + "]"
            values.append(
                {"id": row.id, "base": row.knowledge_base_id, "dims": len(vector), "vector": literal}
            )
        connection.execute(
            text(
                "INSERT INTO chunk_vectors (chunk_id, knowledge_base_id, dims, embedding) "
                "VALUES (:id, :base, :dims, CAST(:vector AS vector))"
            ),
            values,
        )
        last_id = rows[-1].id
