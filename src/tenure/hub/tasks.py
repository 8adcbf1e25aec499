"""Worker jobs of the hub."""

from __future__ import annotations

from datetime import timedelta

from tenure.db import transaction
from tenure.hub import service
from tenure.webhooks import service as webhooks_service
from tenure.worker.jobs import JobContext, periodic

RETENTION = timedelta(days=30)


@periodic("hub.prune_outbox", "40 3 * * *")
def prune_outbox(ctx: JobContext) -> int:
    """Delete outbox rows older than 30 days that every subscriber has handled."""
    with transaction(ctx.sessions) as session:
        return service.prune(
            session,
            before=ctx.clock.now() - RETENTION,
            # A delivery waiting on a disabled endpoint keeps its event.
            keep=webhooks_service.pending_outbox_ids(),
        )
