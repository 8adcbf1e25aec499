"""usage firsts

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "usage_firsts",
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column("metric", sa.String(length=255), nullable=False),
        sa.Column("first_day", sa.Date(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_usage_firsts_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("account_id", "metric", name=op.f("pk_usage_firsts")),
    )
    # Existing usage: each account's first day of each metric.
    from sqlalchemy.orm import Session

    from tenure.ingest import service as ingest_service

    ingest_service.rebuild_usage_firsts(Session(bind=op.get_bind()))


def downgrade() -> None:
    op.drop_table("usage_firsts")
