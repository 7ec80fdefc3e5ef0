"""artifacts in the database: artifact_chunks, and artifacts.path null for those

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01 21:40:00

Existing artifact rows keep their path and load from their files as before. PostgreSQL stores
the chunks uncompressed (STORAGE EXTERNAL): its pglz compression made storing a default result
about ten times slower (1.1 s against 0.1 s for 10 MB) for a third less space
(benchmarks/bench_db.py --compare; docs/database.md).
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("artifacts", schema=None) as batch_op:
        batch_op.alter_column("path", existing_type=sa.String(length=500), nullable=True)
    op.create_table(
        "artifact_chunks",
        sa.Column("experiment_id", sa.String(length=16), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["experiment_id", "kind"],
            ["artifacts.experiment_id", "artifacts.kind"],
            name="fk_artifact_chunks_artifact",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("experiment_id", "kind", "seq", name=op.f("pk_artifact_chunks")),
    )
    if op.get_context().dialect.name == "postgresql":
        op.execute("ALTER TABLE artifact_chunks ALTER COLUMN data SET STORAGE EXTERNAL")


def downgrade() -> None:
    """Artifacts kept in the database are lost (their rows too: path cannot be null again)."""
    op.drop_table("artifact_chunks")
    op.execute("DELETE FROM artifacts WHERE path IS NULL")
    with op.batch_alter_table("artifacts", schema=None) as batch_op:
        batch_op.alter_column("path", existing_type=sa.String(length=500), nullable=False)
