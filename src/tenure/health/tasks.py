"""Worker jobs of the health domain."""

from __future__ import annotations

from tenure.db import transaction, write_lock
from tenure.health import service
from tenure.ingest.catalogue import load_catalogue
from tenure.logging import get_logger
from tenure.worker.jobs import JobContext, every, periodic

log = get_logger("tenure.health")


@every("health.rescore_requested", seconds=2)
def rescore_requested(ctx: JobContext) -> int:
    """Rescore accounts whose data changed (debounced: marks at least 2 s old)."""
    with transaction(ctx.sessions) as session:
        write_lock(session)
        result = service.rescore_requested(
            session,
            now=ctx.clock.now(),
            catalogue=load_catalogue(ctx.settings.metric_catalogue),
        )
    return result.accounts if result else 0


@periodic("health.rescore_portfolio", "20 2 * * *")
def rescore_portfolio(ctx: JobContext) -> int:
    """Rescore every account (the day's score, even for accounts without new data)."""
    now = ctx.clock.now()
    with transaction(ctx.sessions) as session:
        write_lock(session)
        result = service.rescore(
            session,
            as_of=now,
            now=now,
            catalogue=load_catalogue(ctx.settings.metric_catalogue),
        )
    log.info("health.rescored", accounts=result.accounts, seconds=result.seconds)
    return result.accounts


@periodic("health.learn_baseline", "5 2 * * *")
def learn_baseline(ctx: JobContext) -> int:
    """Learn the seasonal baseline from the portfolio's history."""
    with transaction(ctx.sessions) as session:
        learned = service.learn_baseline(
            session,
            as_of=ctx.clock.now(),
            catalogue=load_catalogue(ctx.settings.metric_catalogue),
        )
    return len(learned.figures)


@periodic("health.expire_overrides", "*/5 * * * *")
def expire_overrides(ctx: JobContext) -> int:
    """Show the computed score again on accounts whose override expired."""
    with transaction(ctx.sessions) as session:
        return service.expire_overrides(session, now=ctx.clock.now())
