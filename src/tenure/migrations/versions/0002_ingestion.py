"""ingestion: traits clocks, rescore marks, aliases, unlinked-event indexes

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import tenure.db

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "active_days",
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("contact_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_active_days_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["contact_id"],
            ["contacts.id"],
            name=op.f("fk_active_days_contact_id_contacts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("account_id", "day", "contact_id", name=op.f("pk_active_days")),
    )
    op.create_table(
        "contact_aliases",
        sa.Column("alias", sa.String(length=255), nullable=False),
        sa.Column("external_id", sa.String(length=255), nullable=False),
        sa.Column("created_at", tenure.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("alias", name=op.f("pk_contact_aliases")),
    )
    with op.batch_alter_table("contact_aliases", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_contact_aliases_external_id"), ["external_id"], unique=False
        )

    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("traits_at", tenure.db.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(
            sa.Column("rescore_requested_at", tenure.db.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.create_index(
            batch_op.f("ix_accounts_rescore_requested_at"), ["rescore_requested_at"], unique=False
        )

    with op.batch_alter_table("contacts", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("traits_at", tenure.db.UTCDateTime(timezone=True), nullable=True)
        )

    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.create_index(
            "ix_events_unlinked_group",
            ["group_external_id"],
            unique=False,
            sqlite_where=sa.text("account_id IS NULL"),
            postgresql_where=sa.text("account_id IS NULL"),
        )
        batch_op.create_index(
            "ix_events_unlinked_user",
            ["user_external_id"],
            unique=False,
            sqlite_where=sa.text("contact_id IS NULL"),
            postgresql_where=sa.text("contact_id IS NULL"),
        )


def downgrade() -> None:
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_events_unlinked_user",
            sqlite_where=sa.text("contact_id IS NULL"),
            postgresql_where=sa.text("contact_id IS NULL"),
        )
        batch_op.drop_index(
            "ix_events_unlinked_group",
            sqlite_where=sa.text("account_id IS NULL"),
            postgresql_where=sa.text("account_id IS NULL"),
        )

    with op.batch_alter_table("contacts", schema=None) as batch_op:
        batch_op.drop_column("traits_at")

    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_accounts_rescore_requested_at"))
        batch_op.drop_column("rescore_requested_at")
        batch_op.drop_column("traits_at")

    with op.batch_alter_table("contact_aliases", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_contact_aliases_external_id"))

    op.drop_table("contact_aliases")
    op.drop_table("active_days")
