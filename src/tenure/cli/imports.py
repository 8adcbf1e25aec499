"""tenure import accounts|contacts|subscriptions|events|support|surveys FILE [--partial]."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table
from typer.core import TyperGroup

from tenure.cli.common import (
    cli_errors,
    console,
    err_console,
    fail,
    load_settings,
    ready_engine,
    unit_of_work,
)
from tenure.clock import SystemClock
from tenure.config import Settings
from tenure.ingest.csvimport import KINDS, SPECS, ImportRejected, ImportReport, import_path
from tenure.ingest.csvimport.report import NOUNS
from tenure.kit.actor import Actor

SHOWN_ERRORS = 20  # rows of the error table; the report counts them all


class _Kinds(TyperGroup):
    """An unknown kind is one line and exit code 2, like every other CLI error."""

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:  # Typer's vendored click
        if args and not args[0].startswith("-") and args[0] not in self.commands:
            raise fail(f"unknown kind {args[0]!r}: use one of {', '.join(KINDS)}")
        return super().resolve_command(ctx, args)


app = typer.Typer(
    cls=_Kinds,
    help=(
        "Import a CSV file: accounts, contacts, subscriptions, events, support or surveys. "
        "UTF-8 (with or without BOM), separated by , ; tab or |. Rows are matched by "
        "external id, so importing a file again changes nothing. All or nothing unless "
        "--partial. Exit code 2 when rows were rejected."
    ),
    no_args_is_help=True,
    add_completion=False,
)


@contextmanager
def _progress(path: Path, show: bool) -> Iterator[Callable[[int], None] | None]:
    if not show:
        yield None
        return
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=err_console,
        transient=True,
    ) as bar:
        task = bar.add_task(f"Importing {path.name}", total=path.stat().st_size)
        yield lambda done: bar.update(task, completed=done)


def import_file(
    settings: Settings, kind: str, path: Path, *, partial: bool, show_progress: bool
) -> ImportReport:
    """What `tenure import KIND FILE` does: one transaction, committed unless rejected."""
    if not path.is_file():
        raise fail(f"{path}: no such file" if not path.exists() else f"{path} is not a file")
    engine = ready_engine(settings)
    try:
        with _progress(path, show_progress) as progress, unit_of_work(engine) as session:
            return import_path(
                session,
                kind,
                path,
                actor=Actor.cli("tenure import"),
                now=SystemClock().now(),
                partial=partial,
                fx=settings.fx(),
                progress=progress,
            )
    except ImportRejected as exc:
        return exc.report  # rolled back by unit_of_work
    finally:
        engine.dispose()


def print_report(report: ImportReport) -> None:
    if report.errors:
        shown = report.errors[:SHOWN_ERRORS]
        table = Table("line", "column", "reason", title_justify="left")
        table.title = (
            f"{report.error_count:,} errors"
            if report.error_count <= len(shown)
            else f"First {len(shown)} of {report.error_count:,} errors"
        )
        for issue in shown:
            table.add_row(str(issue.line), issue.column or "", issue.reason)
        console.print(table)
    summary = report.summary()
    if report.status == "rejected" and report.valid and not report.header_errors:
        rows = "row" if report.valid == 1 else "rows"
        summary += f". Fix them, or pass --partial to import the {report.valid:,} good {rows}."
    console.print(summary, markup=False, soft_wrap=True)


def _command(kind: str) -> Callable[..., None]:
    def command(
        file: Annotated[Path, typer.Argument(help="The CSV file", show_default=False)],
        partial: Annotated[
            bool,
            typer.Option("--partial", help="Import the good rows even when some are rejected"),
        ] = False,
    ) -> None:
        settings = load_settings()
        report = import_file(
            settings, kind, file, partial=partial, show_progress=err_console.is_terminal
        )
        print_report(report)
        if not report.ok:
            raise typer.Exit(2)

    return command


_MATCHING = {
    "accounts": "Matched by external_id. Columns not listed are kept as traits.",
    "contacts": "Matched by external_id. Columns not listed are kept as traits.",
    "subscriptions": "Matched by external_id, else by account, kind and time.",
    "events": "Deduplicated by message_id, else by the row's content. Times: ISO-8601 "
    "(naive = UTC) or epoch seconds/milliseconds; properties: a JSON object.",
    "support": "Matched by external_id, else by account, contact, type, channel and opened_at.",
    "surveys": "Matched by external_id, else by account, contact, kind and responded_at.",
}


def _help(kind: str) -> str:
    noun = NOUNS.get(kind, kind)
    columns = "\n".join(f"• {line}" for line in SPECS[kind].describe())
    return (
        f"Import {noun} from a CSV file.\n\n{_MATCHING[kind]}\n\n"
        f"Columns ← headers accepted for them (case, spaces, _ and - ignored):\n\n{columns}"
    )


for _kind in KINDS:
    app.command(name=_kind, help=_help(_kind))(cli_errors(_command(_kind)))
