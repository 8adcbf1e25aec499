"""Worker jobs of the auth domain."""

from __future__ import annotations

from tenure.auth import service
from tenure.db import transaction
from tenure.worker.jobs import JobContext, periodic


@periodic("auth.prune_sessions", "17 * * * *")
def prune_sessions(ctx: JobContext) -> int:
    """Delete expired dashboard sessions."""
    with transaction(ctx.sessions) as session:
        return service.prune_expired_sessions(session, now=ctx.clock.now())
