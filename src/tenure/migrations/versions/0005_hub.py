"""event hub: outbox and deliveries

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import tenure.db

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "outbox",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("event_type", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Uuid(), nullable=True),
        sa.Column(
            "payload",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("occurred_at", tenure.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_at", tenure.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("fanned_out_at", tenure.db.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox")),
    )
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.create_index("ix_outbox_account_id", ["account_id", "id"], unique=False)
        batch_op.create_index(
            "ix_outbox_unfanned",
            ["id"],
            unique=False,
            sqlite_where=sa.text("fanned_out_at IS NULL"),
            postgresql_where=sa.text("fanned_out_at IS NULL"),
        )

    op.create_table(
        "hub_deliveries",
        sa.Column(
            "outbox_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("subscriber", sa.String(length=128), nullable=False),
        sa.Column("account_id", sa.Uuid(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", tenure.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_error", sa.String(length=1000), nullable=True),
        sa.Column("updated_at", tenure.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["outbox_id"],
            ["outbox.id"],
            name=op.f("fk_hub_deliveries_outbox_id_outbox"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("outbox_id", "subscriber", name=op.f("pk_hub_deliveries")),
    )
    with op.batch_alter_table("hub_deliveries", schema=None) as batch_op:
        batch_op.create_index(
            "ix_hub_deliveries_dead",
            ["outbox_id"],
            unique=False,
            sqlite_where=sa.text("status = 'dead'"),
            postgresql_where=sa.text("status = 'dead'"),
        )
        batch_op.create_index(
            "ix_hub_deliveries_pending",
            ["subscriber", "account_id", "outbox_id"],
            unique=False,
            sqlite_where=sa.text("status = 'pending'"),
            postgresql_where=sa.text("status = 'pending'"),
        )


def downgrade() -> None:
    with op.batch_alter_table("hub_deliveries", schema=None) as batch_op:
        batch_op.drop_index("ix_hub_deliveries_pending")
        batch_op.drop_index("ix_hub_deliveries_dead")

    op.drop_table("hub_deliveries")
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_unfanned")
        batch_op.drop_index("ix_outbox_account_id")

    op.drop_table("outbox")
