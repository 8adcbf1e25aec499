"""tenure score ...: rescore the portfolio, one account or a past period; scorecards."""

from __future__ import annotations

import json
import math
import time
import tomllib
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock_time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from tenure.accounts import service as accounts_service
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
from tenure.health import service
from tenure.health.scorecard import parse_scorecard
from tenure.kit.actor import Actor
from tenure.kit.errors import InvalidInput

HELP = """Rescore health now, or recompute its history.

\b
  tenure score                   rescore every account now, print a summary
  tenure score --account ID      rescore one account (external id), explain it
  tenure score --backfill --from 2026-01-01 --to 2026-03-31 [--every 7]
                                 recompute the daily history of a period

A backfill scores each day as of 23:59:59 UTC (today: as of now) from what
was known then, and announces no changes.
Scorecards: tenure score scorecard --help
"""

app = typer.Typer(help=HELP, invoke_without_command=True)
scorecard_app = typer.Typer(
    help="Scorecards: list them, import a TOML file as the next version, export one.",
    no_args_is_help=True,
)
app.add_typer(scorecard_app, name="scorecard")


def _day(value: str, option: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise fail(f"{option} {value!r} is not an ISO date (YYYY-MM-DD)") from None


def _money(cents: int, currency: str) -> str:
    return f"{cents / 100:,.2f} {currency}"


def _number(value: float | None, signed: bool = False) -> str:
    if value is None:
        return "n/a"
    return f"{value:+.1f}" if signed else f"{value:.1f}"


@app.callback()
@cli_errors
def score(
    ctx: typer.Context,
    account: Annotated[
        str | None, typer.Option(help="External id of one account to rescore and explain")
    ] = None,
    backfill: Annotated[
        bool, typer.Option("--backfill", help="Recompute the history of --from .. --to")
    ] = False,
    from_: Annotated[
        str | None, typer.Option("--from", help="First day of the backfill (YYYY-MM-DD)")
    ] = None,
    to: Annotated[
        str | None, typer.Option("--to", help="Last day of the backfill, included (YYYY-MM-DD)")
    ] = None,
    every: Annotated[int, typer.Option(min=1, help="Backfill every Nth day")] = 1,
) -> None:
    if ctx.invoked_subcommand is not None:
        if account or backfill or from_ or to:
            raise fail(f"the options of 'tenure score' do not apply to '{ctx.invoked_subcommand}'")
        return
    if backfill:
        if from_ is None or to is None:
            raise fail("--backfill needs --from and --to")
        _backfill(_day(from_, "--from"), _day(to, "--to"), every, account)
        return
    if from_ or to:
        raise fail("--from and --to go with --backfill")
    if account:
        _one(account)
    else:
        _portfolio()


def _account_id(session: Any, external_id: str) -> Any:
    found = accounts_service.get_account_by_external_id(session, external_id)
    if found is None:
        raise fail(f"no account with external id {external_id!r}")
    return found


def _portfolio() -> None:
    settings = load_settings()
    now = SystemClock().now()
    started = time.perf_counter()
    with unit_of_work(ready_engine(settings)) as session:
        result = service.rescore(session, as_of=now, now=now)
        levels = service.distribution(session)
    seconds = time.perf_counter() - started
    console.print(
        f"Scored {result.scored:,} of {result.accounts:,} accounts as of "
        f"{now:%Y-%m-%d %H:%M} UTC in {seconds:.1f} s ({result.announced:,} changes announced)",
        markup=False,
    )
    table = Table("risk level", "accounts", "MRR", title="Portfolio (overrides applied)")
    for level, v in levels["levels"].items():
        table.add_row(
            f"{v['label'] or level} ({level})",
            f"{v['accounts']:,}",
            _money(v["mrr_cents"], settings.reporting_currency),
        )
    table.add_row("unscored", f"{levels['unscored']:,}", "")
    console.print(table)


def _one(external_id: str) -> None:
    now = SystemClock().now()
    with unit_of_work(ready_engine(load_settings())) as session:
        account = _account_id(session, external_id)
        service.rescore(session, as_of=now, now=now, account_ids=[account.id])
        view = service.health_view(session, account.id, at=now)
        if view is None or view.row.as_of != now:
            raise fail(f"account {external_id!r} is not scored: it had churned (or not started)")
        row = view.row
        console.print(
            f"{account.name} ({external_id}): score {_number(row.score)}, "
            f"{row.risk_level or 'no level'}; 7 days {_number(row.delta_7, True)}, "
            f"30 days {_number(row.delta_30, True)}; scorecard {row.scorecard_key} "
            f"v{row.scorecard_version}, as of {row.as_of:%Y-%m-%d %H:%M} UTC",
            markup=False,
            soft_wrap=True,
        )
        if view.override is not None:
            o = view.override
            console.print(
                f"Override by {o.created_by} until {o.expires_at:%Y-%m-%d %H:%M}: "
                f"{_number(view.effective_score)}, {view.effective_risk} ({o.reason})",
                markup=False,
                soft_wrap=True,
            )
        components = Table("component", "score", "weight", "contribution", title="Components")
        for key, c in row.components.items():
            components.add_row(
                key,
                _number(c["score"]),
                "" if c["weight"] is None else f"{c['weight']:g}",
                "" if c["contribution"] is None else f"{c['contribution']:.1f}",
            )
        for key in row.missing:
            components.add_row(key, "no data", "", "")
        console.print(components)
        factors = Table("signal", "impact", "why", title="Risk factors")
        for f in row.factors:
            factors.add_row(f["signal"], _number(f["impact"]), f["text"])
        if row.factors:
            console.print(factors)
        else:
            console.print("No risk factors.")


def _backfill(start: date, end: date, every: int, external_id: str | None) -> None:
    if start > end:
        raise fail(f"--from {start} is after --to {end}")
    now = SystemClock().now()
    if end > now.date():
        raise fail(f"--to {end} is in the future (today is {now.date()})")
    engine = ready_engine(load_settings())
    ids = None
    if external_id:
        with unit_of_work(engine) as session:
            ids = [_account_id(session, external_id).id]
    days = [start + timedelta(days=i) for i in range(0, (end - start).days + 1, every)]
    scores = 0
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=err_console, transient=False) as progress:
        task = progress.add_task("Rescoring history", total=len(days))
        for day in days:
            as_of = min(datetime.combine(day, clock_time(23, 59, 59), tzinfo=UTC), now)
            # A day per transaction: an interrupted backfill keeps the days it finished.
            with unit_of_work(engine) as session:
                result = service.rescore(
                    session, as_of=as_of, now=now, account_ids=ids, publish=False
                )
            scores += result.scored
            progress.update(task, advance=1, description=f"Rescoring {day}")
    console.print(
        f"Backfilled {len(days)} day{'s' if len(days) != 1 else ''} from {start} to {end}: "
        f"{scores:,} scores",
        markup=False,
    )


# Scorecards.


def _read_definition(file: Path) -> dict[str, Any]:
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise fail(f"cannot read {file}: {getattr(exc, 'strerror', None) or exc}") from None
    try:
        data = json.loads(text) if file.suffix.lower() == ".json" else tomllib.loads(text)
    except (tomllib.TOMLDecodeError, ValueError) as exc:
        kind = "JSON" if file.suffix.lower() == ".json" else "TOML"
        raise fail(f"{file} is not valid {kind}: {exc}") from None
    if not isinstance(data, dict):
        raise fail(f"{file} must hold one scorecard (an object)")
    return data


@scorecard_app.command("import")
@cli_errors
def import_(
    file: Annotated[Path, typer.Argument(help="Scorecard file: TOML (or JSON if *.json)")],
) -> None:
    """Validate a scorecard and save it as the next version of its key (new key: version 1).

    Every mistake is listed with its path; nothing is saved unless the file is valid."""
    definition = _read_definition(file)
    try:
        parse_scorecard(definition)
    except InvalidInput as exc:
        errors = exc.extra.get("errors") or [{"field": "(top level)", "message": exc.detail}]
        err_console.print(
            f"error: {file} is not a valid scorecard ({len(errors)} "
            f"error{'s' if len(errors) != 1 else ''}):",
            markup=False,
            soft_wrap=True,
        )
        for e in errors:
            err_console.print(f"  {e['field']}: {e['message']}", markup=False, soft_wrap=True)
        raise typer.Exit(2) from None
    with unit_of_work(ready_engine(load_settings())) as session:
        card = service.save_scorecard(
            session, definition, actor=Actor.cli(), now=SystemClock().now()
        )
    console.print(f"Saved scorecard {card.key} version {card.version}", markup=False)


@scorecard_app.command("export")
@cli_errors
def export(
    key: Annotated[str, typer.Argument(help="Scorecard key (see 'tenure score scorecard list')")],
    version: Annotated[
        int | None, typer.Option("--version", min=1, help="A past version (default: latest)")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON instead of TOML")] = False,
) -> None:
    """Print a scorecard as TOML (ready for 'tenure score scorecard import')."""
    with unit_of_work(ready_engine(load_settings())) as session:
        service.active_cards(session, now=SystemClock().now())
        rows = service.scorecard_versions(session, key)
        chosen = (
            rows[0] if version is None else next((r for r in rows if r.version == version), None)
        )
        if chosen is None:
            known = ", ".join(str(r.version) for r in reversed(rows))
            raise fail(f"scorecard {key!r} has no version {version} (versions: {known})")
        definition, number = dict(chosen.definition), chosen.version
    if as_json:
        typer.echo(json.dumps(definition, indent=2, ensure_ascii=False))
    else:
        typer.echo(f"# Scorecard {key}, version {number}\n" + to_toml(definition), nl=False)


@scorecard_app.command("list")
@cli_errors
def list_() -> None:
    """The scorecards in use, the default last."""
    with unit_of_work(ready_engine(load_settings())) as session:
        cards = service.active_cards(session, now=SystemClock().now())
        table = Table("key", "v", "name", "applies to", "weights", "saved")
        for column in (0, 4):
            table.columns[column].no_wrap = True
        for card in cards:
            row = next(
                r
                for r in service.scorecard_versions(session, card.key)
                if r.version == card.version
            )
            segment = card.config.segment
            applies = (
                "default"
                if card.config.default
                else "; ".join(
                    f"{name} in {', '.join(values)}"
                    for name, values in (
                        ("category", segment.category),
                        ("plan", segment.plan),
                        ("lifecycle", segment.lifecycle),
                    )
                    if values
                )
                or "every account"
            )
            table.add_row(
                card.key,
                str(card.version),
                card.config.name,
                applies,
                "\n".join(f"{c.key} {c.weight:g}" for c in card.config.components),
                f"{row.created_at:%Y-%m-%d %H:%M} by {row.created_by}",
            )
    console.print(table)


# A TOML writer for scorecards (no TOML writer is among the dependencies): simple values,
# inline tables, and arrays of tables for lists of tables. JSON strings are valid TOML
# basic strings; TOML has no null, so None is left out.


def _toml_key(key: str) -> str:
    bare = key and all(ch.isascii() and (ch.isalnum() or ch in "_-") for ch in key)
    return key if bare else json.dumps(key, ensure_ascii=False)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value if v is not None) + "]"
    if isinstance(value, dict):
        pairs = [f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items() if v is not None]
        return "{ " + ", ".join(pairs) + " }" if pairs else "{}"
    raise TypeError(f"cannot write {type(value).__name__} as TOML")


def _is_tables(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)


def _toml_table(table: dict[str, Any], path: str, out: list[str]) -> None:
    for key, value in table.items():
        if value is not None and not _is_tables(value):
            out.append(f"{_toml_key(key)} = {_toml_value(value)}")
    for key, value in table.items():
        if _is_tables(value):
            name = f"{path}{_toml_key(key)}"
            for item in value:
                out.extend(["", f"[[{name}]]"])
                _toml_table(item, f"{name}.", out)


def to_toml(data: dict[str, Any]) -> str:
    """A TOML document holding `data` (a JSON-like dict)."""
    out: list[str] = []
    _toml_table(data, "", out)
    return "\n".join(out) + "\n"
