"""tenure sim generate: write a simulated wedding-supplier business to import files."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from tenure.cli.common import console, err_console, fail
from tenure.sim.files import write_files
from tenure.sim.records import SimConfig

app = typer.Typer(
    help="Simulate a SaaS business of wedding suppliers (demo data, tests, benchmarks).",
    no_args_is_help=True,
)


@app.callback()
def sim() -> None:
    """Simulate a SaaS business of wedding suppliers."""


def _parse_end(value: str | None) -> date:
    if value is None:
        return SimConfig().end
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise fail(f"--end must be a date like 2026-11-01, got {value!r}") from None


@app.command("generate")
def generate(
    out: Annotated[Path, typer.Option("--out", help="Directory to write the files into")],
    accounts: Annotated[int, typer.Option(help="Number of accounts (1..1,000,000)")] = 2000,
    months: Annotated[int, typer.Option(help="Length of the simulated period (1..120)")] = 18,
    seed: Annotated[int, typer.Option(help="Random seed: same seed, same files")] = 0,
    end: Annotated[
        str | None, typer.Option(help="First day after the period, YYYY-MM-DD [2026-11-01]")
    ] = None,
    include_truth: Annotated[
        bool, typer.Option(help="Also write truth.json (hidden state: never import it)")
    ] = False,
    force: Annotated[bool, typer.Option(help="Write into a non-empty directory")] = False,
) -> None:
    """Write accounts, contacts, subscriptions, support and survey CSVs and Segment batches."""
    try:
        config = SimConfig(accounts=accounts, months=months, seed=seed, end=_parse_end(end))
    except ValueError as exc:
        raise fail(str(exc)) from None
    if out.exists() and not out.is_dir():
        raise fail(f"{out} exists and is not a directory")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise fail(f"{out} is not empty; pass --force to overwrite the files in it")

    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=err_console, transient=False) as progress:
        task = progress.add_task("Simulating accounts", total=config.accounts)
        summary = write_files(
            config,
            out,
            progress=lambda done: progress.advance(task, done),
            include_truth=include_truth,
        )
    console.print(
        f"Wrote {summary.accounts:,} accounts, {summary.contacts:,} contacts, "
        f"{summary.events:,} events in {summary.batches:,} batches, "
        f"{summary.subscriptions:,} subscription changes, {summary.support:,} support "
        f"interactions and {summary.surveys:,} survey responses to {out} "
        f"({config.start.isoformat()} to {config.end.isoformat()})",
        markup=False,
        soft_wrap=True,
    )
