"""support api: indexes for listing interactions and survey responses newest first

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("support_interactions", schema=None) as batch_op:
        batch_op.create_index("ix_support_interactions_opened", ["opened_at", "id"], unique=False)
    with op.batch_alter_table("survey_responses", schema=None) as batch_op:
        batch_op.create_index("ix_survey_responses_responded", ["responded_at", "id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("survey_responses", schema=None) as batch_op:
        batch_op.drop_index("ix_survey_responses_responded")
    with op.batch_alter_table("support_interactions", schema=None) as batch_op:
        batch_op.drop_index("ix_support_interactions_opened")
