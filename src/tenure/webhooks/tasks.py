"""Worker jobs of the webhooks domain."""

from __future__ import annotations

from datetime import timedelta

from tenure.db import transaction
from tenure.webhooks import service
from tenure.worker.jobs import JobContext, periodic

RETENTION = timedelta(days=30)


@periodic("webhooks.prune_log", "50 3 * * *")
def prune_log(ctx: JobContext) -> int:
    """Delete finished webhook deliveries (and their attempt log) older than 30 days."""
    with transaction(ctx.sessions) as session:
        return service.prune(session, before=ctx.clock.now() - RETENTION)
