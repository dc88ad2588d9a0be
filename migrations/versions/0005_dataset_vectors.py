"""datasets from precomputed vectors

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 07:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("datasets", schema=None) as batch_op:
        batch_op.add_column(sa.Column("backbone", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("backbone_identity", sa.String(length=2000), nullable=True))
        batch_op.add_column(sa.Column("dim", sa.Integer(), nullable=True))
    op.create_table(
        "dataset_vectors",
        sa.Column("dataset_id", sa.String(length=40), nullable=False),
        sa.Column("chunk", sa.Integer(), nullable=False),
        sa.Column("start", sa.Integer(), nullable=False),
        sa.Column("n_rows", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["dataset_id"],
            ["datasets.id"],
            name=op.f("fk_dataset_vectors_dataset_id_datasets"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("dataset_id", "chunk", name=op.f("pk_dataset_vectors")),
    )


def downgrade() -> None:
    op.drop_table("dataset_vectors")
    with op.batch_alter_table("datasets", schema=None) as batch_op:
        batch_op.drop_column("dim")
        batch_op.drop_column("backbone_identity")
        batch_op.drop_column("backbone")
