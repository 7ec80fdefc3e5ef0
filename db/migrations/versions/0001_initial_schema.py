"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-26 10:05:15.196476
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "experiments",
        sa.Column("id", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("worker", sa.String(length=200), nullable=True),
        sa.Column("progress", sa.Double(), nullable=False),
        sa.Column("stage", sa.String(length=200), nullable=True),
        sa.Column("cancel_requested", sa.Boolean(), nullable=False),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("summary", sa.JSON(), nullable=True),
        sa.Column("timings", sa.JSON(), nullable=True),
        sa.Column("versions", sa.JSON(), nullable=True),
        sa.Column("result_meta", sa.JSON(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "status IN ('queued', 'running', 'done', 'failed', 'cancelled')",
            name=op.f("ck_experiments_status"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_experiments")),
    )
    with op.batch_alter_table("experiments", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_experiments_created_at"), ["created_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_experiments_status"), ["status"], unique=False)

    op.create_table(
        "artifacts",
        sa.Column("experiment_id", sa.String(length=16), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("path", sa.String(length=500), nullable=False),
        sa.Column("bytes", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["experiment_id"],
            ["experiments.id"],
            name=op.f("fk_artifacts_experiment_id_experiments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("experiment_id", "kind", name=op.f("pk_artifacts")),
    )
    op.create_table(
        "curves",
        sa.Column("experiment_id", sa.String(length=16), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("method", sa.String(length=16), nullable=False),
        sa.Column("objective", sa.String(length=16), nullable=False),
        sa.Column("member", sa.Integer(), nullable=True),
        sa.Column("lam", sa.Double(), nullable=True),
        sa.Column("label", sa.String(length=100), nullable=False),
        sa.Column("extra", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(
            ["experiment_id"],
            ["experiments.id"],
            name=op.f("fk_curves_experiment_id_experiments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("experiment_id", "position", name=op.f("pk_curves")),
    )
    op.create_table(
        "reward_models",
        sa.Column("experiment_id", sa.String(length=16), nullable=False),
        sa.Column("member", sa.Integer(), nullable=False),
        sa.Column("heldout_acc_gold", sa.Double(), nullable=True),
        sa.Column("standardization", sa.JSON(), nullable=True),
        sa.Column("train_loss", sa.JSON(), nullable=True),
        sa.Column("extra", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(
            ["experiment_id"],
            ["experiments.id"],
            name=op.f("fk_reward_models_experiment_id_experiments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("experiment_id", "member", name=op.f("pk_reward_models")),
    )
    op.create_table(
        "samples",
        sa.Column("experiment_id", sa.String(length=16), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("step", sa.Integer(), nullable=True),
        sa.Column("prompt", sa.Text(), nullable=True),
        sa.Column("answer", sa.Text(), nullable=True),
        sa.Column("gold", sa.Double(), nullable=True),
        sa.Column("proxy", sa.Double(), nullable=True),
        sa.Column("extra", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(
            ["experiment_id"],
            ["experiments.id"],
            name=op.f("fk_samples_experiment_id_experiments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("experiment_id", "position", name=op.f("pk_samples")),
    )
    op.create_table(
        "curve_points",
        sa.Column("experiment_id", sa.String(length=16), nullable=False),
        sa.Column("curve", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("n", sa.Integer(), nullable=True),
        sa.Column("step", sa.Integer(), nullable=True),
        sa.Column("kl", sa.Double(), nullable=True),
        sa.Column("gold", sa.Double(), nullable=True),
        sa.Column("proxy", sa.Double(), nullable=True),
        sa.Column("proxy_mean", sa.Double(), nullable=True),
        sa.Column("gold_se", sa.Double(), nullable=True),
        sa.Column("extra", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(
            ["experiment_id", "curve"],
            ["curves.experiment_id", "curves.position"],
            name="fk_curve_points_curve",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("experiment_id", "curve", "position", name=op.f("pk_curve_points")),
    )


def downgrade() -> None:
    op.drop_table("curve_points")
    op.drop_table("samples")
    op.drop_table("reward_models")
    op.drop_table("curves")
    op.drop_table("artifacts")
    with op.batch_alter_table("experiments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_experiments_status"))
        batch_op.drop_index(batch_op.f("ix_experiments_created_at"))

    op.drop_table("experiments")
