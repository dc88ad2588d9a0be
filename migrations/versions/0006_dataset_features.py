"""dataset feature snapshots: a dataset's cached vectors as blocks, in dataset order

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 02:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "dataset_features",
        sa.Column("dataset_id", sa.String(length=40), nullable=False),
        sa.Column("backbone_hash", sa.String(length=64), nullable=False),
        sa.Column("chunk", sa.Integer(), nullable=False),
        sa.Column("start", sa.Integer(), nullable=False),
        sa.Column("n_rows", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["dataset_id"],
            ["datasets.id"],
            name=op.f("fk_dataset_features_dataset_id_datasets"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "dataset_id", "backbone_hash", "chunk", name=op.f("pk_dataset_features")
        ),
    )
    if op.get_bind().dialect.name == "postgresql":
        # float32 blocks do not compress: skip pglz's attempt (writes 2x at 1536 dims,
        # benchmarks/results/perf.md section 4); rows written earlier keep their storage
        for table in ("dataset_features", "dataset_vectors"):
            op.execute(f"ALTER TABLE {table} ALTER COLUMN data SET STORAGE EXTERNAL")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE dataset_vectors ALTER COLUMN data SET STORAGE EXTENDED")
    op.drop_table("dataset_features")
