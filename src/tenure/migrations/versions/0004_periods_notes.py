"""subscription periods and notes

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import tenure.db

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table(
        "notes",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column("author_id", sa.Uuid(), nullable=True),
        sa.Column("author_label", sa.String(length=320), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("pinned", sa.Boolean(), nullable=False),
        sa.Column("created_at", tenure.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", tenure.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_notes_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["author_id"],
            ["staff_users.id"],
            name=op.f("fk_notes_author_id_staff_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notes")),
    )
    with op.batch_alter_table("notes", schema=None) as batch_op:
        batch_op.create_index(
            "ix_notes_account_created", ["account_id", "created_at"], unique=False
        )

    op.create_table(
        "subscription_periods",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column("external_id", sa.String(length=255), nullable=True),
        sa.Column("plan", sa.String(length=64), nullable=True),
        sa.Column("mrr_cents", sa.Integer(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("started_at", tenure.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("ended_at", tenure.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", tenure.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", tenure.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_subscription_periods_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subscription_periods")),
        sa.UniqueConstraint("external_id", name=op.f("uq_subscription_periods_external_id")),
    )
    with op.batch_alter_table("subscription_periods", schema=None) as batch_op:
        batch_op.create_index(
            "ix_subscription_periods_account_start", ["account_id", "started_at"], unique=False
        )


def downgrade() -> None:

    with op.batch_alter_table("subscription_periods", schema=None) as batch_op:
        batch_op.drop_index("ix_subscription_periods_account_start")

    op.drop_table("subscription_periods")
    with op.batch_alter_table("notes", schema=None) as batch_op:
        batch_op.drop_index("ix_notes_account_created")

    op.drop_table("notes")
