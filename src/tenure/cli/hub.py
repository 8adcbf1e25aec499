"""tenure hub dead|replay|schedule: the event hub's dead letters and periodic jobs."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from tenure.cli.common import cli_errors, console, load_settings, ready_engine, unit_of_work
from tenure.clock import SystemClock
from tenure.hub import service

app = typer.Typer(help="The event hub: dead letters, schedules.", no_args_is_help=True)


@app.command("dead")
@cli_errors
def dead(
    subscriber: Annotated[str | None, typer.Option(help="Only this subscriber")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 100,
) -> None:
    """Deliveries to subscribers that failed every attempt."""
    with unit_of_work(ready_engine(load_settings())) as session:
        table = Table("event id", "subscriber", "type", "attempts", "last error", "occurred")
        for d in service.list_dead(session, subscriber=subscriber, limit=limit):
            table.add_row(
                str(d.outbox_id),
                d.subscriber,
                d.event_type,
                str(d.attempts),
                d.last_error or "",
                f"{d.occurred_at:%Y-%m-%d %H:%M:%S}",
            )
    console.print(table)


@app.command("replay")
@cli_errors
def replay(
    event_id: Annotated[int, typer.Argument(help="Outbox id of the dead delivery")],
    subscriber: Annotated[str, typer.Argument()],
) -> None:
    """Deliver a dead event to its subscriber again."""
    with unit_of_work(ready_engine(load_settings())) as session:
        service.replay(session, event_id, subscriber, now=SystemClock().now())
    console.print(f"Event {event_id} will be delivered to {subscriber} again", markup=False)


@app.command("schedule")
@cli_errors
def schedule() -> None:
    """Periodic jobs and the cron expression in effect (TENURE_SCHEDULES overrides)."""
    from tenure.worker.jobs import schedule as effective
    from tenure.worker.runtime import load_jobs

    jobs = load_jobs()
    table = Table("job", "cron", "what it does")
    for name, expression in effective(load_settings()).items():
        table.add_row(name, expression or "off", jobs[name].doc)
    console.print(table)
