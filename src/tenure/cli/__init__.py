"""The `tenure` command line."""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from sqlalchemy import Engine

from tenure import __version__
from tenure.auth import service as auth_service
from tenure.cli import churn, hub, imports, keys, score, sim, users, webhooks
from tenure.cli.common import (
    cli_errors,
    console,
    engine_for,
    fail,
    load_settings,
    read_password,
    ready_engine,
    unit_of_work,
)
from tenure.clock import SystemClock
from tenure.config import Settings
from tenure.db import describe, migration_status, upgrade
from tenure.kit.actor import Actor
from tenure.kit.security import generate_password

app = typer.Typer(
    help="Tenure: customer success platform.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(users.app, name="users")
app.add_typer(keys.app, name="keys")
app.add_typer(sim.app, name="sim")
app.add_typer(imports.app, name="import")
app.add_typer(webhooks.app, name="webhooks")
app.add_typer(webhooks.hooks_app, name="hooks")
app.add_typer(hub.app, name="hub")
app.add_typer(score.app, name="score")
app.add_typer(churn.app, name="churn")


def _version(value: bool) -> None:
    if value:
        console.print(f"tenure {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version")
    ] = False,
) -> None:
    """Tenure: health scores, churn prediction and interventions for your customer base."""


def _create_admin(settings: Settings, email: str, password: str | None) -> str | None:
    """Create the admin unless that user exists; returns the password if one was generated."""
    engine = ready_engine(settings)
    generated = password is None
    password = password or generate_password()
    with unit_of_work(engine) as session:
        existing = [u for u in auth_service.list_users(session) if u.email == email.strip().lower()]
        if existing:
            console.print(f"User {existing[0].email} already exists; left unchanged.")
            return None
        auth_service.create_user(
            session,
            email=email,
            password=password,
            role="admin",
            name="Administrator",
            actor=Actor.cli("tenure init"),
            now=SystemClock().now(),
        )
    console.print(f"Created admin {email.strip().lower()}")
    return password if generated else None


@app.command()
@cli_errors
def init(
    email: Annotated[
        str | None, typer.Option(help="Create the first admin with this email")
    ] = None,
    password_stdin: Annotated[
        bool, typer.Option(help="Read the admin password from stdin")
    ] = False,
) -> None:
    """Create or upgrade the database (idempotent) and create the first admin."""
    settings = load_settings()
    if email is not None:
        auth_service.normalise_email(email)
    engine = engine_for(settings)
    upgrade(engine)
    current, _ = migration_status(engine)
    console.print(f"Database ready: {describe(engine)} (schema {current})")
    if email is None:
        with unit_of_work(engine) as session:
            if not auth_service.has_users(session):
                console.print(
                    "No users yet: run 'tenure init --email you@example.com' to create an admin."
                )
        return
    password = read_password(password_stdin)
    generated = _create_admin(settings, email, password)
    if generated:
        console.print(f"Password (shown once): {generated}", markup=False)


def _serve(settings: Settings, host: str, port: int, *, with_worker: bool) -> None:
    import uvicorn

    from tenure.app import create_app
    from tenure.logging import configure_logging

    engine = ready_engine(settings)
    configure_logging(settings.log_level)
    uvicorn.run(
        create_app(settings, engine=engine, with_worker=with_worker),
        host=host,
        port=port,
        log_level=settings.log_level.lower(),
        access_log=False,
    )


@app.command()
@cli_errors
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address [default: TENURE_HOST]")] = None,
    port: Annotated[
        int | None, typer.Option(min=1, max=65535, help="Port [default: TENURE_PORT]")
    ] = None,
    with_worker: Annotated[
        bool,
        typer.Option(
            "--with-worker/--no-worker", help="Also run the worker in this process (one machine)"
        ),
    ] = False,
) -> None:
    """Serve the API and the dashboard."""
    settings = load_settings()
    settings.resolved_secret_key()
    _serve(settings, host or settings.host, port or settings.port, with_worker=with_worker)


@app.command()
@cli_errors
def worker(
    threads: Annotated[int, typer.Option(min=1, max=64, help="huey worker threads")] = 2,
    periodic: Annotated[
        bool,
        typer.Option(
            "--periodic/--no-periodic", help="Run the periodic jobs' scheduler in this worker"
        ),
    ] = True,
) -> None:
    """Run a worker: outbox dispatch, webhook sending, periodic and queued jobs."""
    from tenure.logging import configure_logging
    from tenure.worker.runtime import Worker

    settings = load_settings()
    engine = ready_engine(settings)
    configure_logging(settings.log_level)
    Worker(settings, engine=engine, periodic=periodic).run_forever(workers=threads)


DEMO_ADMIN = "admin@tenure.demo"
DEMO_CSMS = [
    ("maya.patel@tenure.demo", "Maya Patel"),
    ("lucas.martin@tenure.demo", "Lucas Martin"),
    ("sofia.rossi@tenure.demo", "Sofia Rossi"),
    ("james.okafor@tenure.demo", "James Okafor"),
]


@app.command()
@cli_errors
def demo(
    accounts: Annotated[int, typer.Option(help="Accounts to simulate")] = 2000,
    months: Annotated[int, typer.Option(help="Months of history")] = 18,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same business)")] = 7,
    db: Annotated[Path, typer.Option(help="SQLite file to create")] = Path("tenure-demo.db"),
    force: Annotated[bool, typer.Option(help="Replace an existing demo database")] = False,
    serve_: Annotated[bool, typer.Option("--serve/--no-serve", help="Serve after loading")] = True,
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535)] = 8000,
) -> None:
    """Create a fresh database with a simulated portfolio, an admin login, and serve it."""
    from tenure.sim.loader import load
    from tenure.sim.records import SimConfig

    clock = SystemClock()
    try:
        config = SimConfig(accounts=accounts, months=months, seed=seed, end=clock.now().date())
    except ValueError as exc:
        raise fail(str(exc)) from None
    if db.exists() and not force:
        raise fail(f"{db} already exists; pass --force to replace it")
    if not db.parent.resolve().is_dir():
        raise fail(f"directory {db.parent} does not exist")
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    settings = load_settings(f"sqlite:///{db}")
    engine = engine_for(settings)
    upgrade(engine)
    password = _create_admin(settings, DEMO_ADMIN, None)
    with unit_of_work(engine) as session:
        owners = [
            auth_service.create_user(
                session,
                email=email,
                name=name,
                role="csm",
                password=generate_password(),
                actor=Actor.cli("tenure demo"),
                now=clock.now(),
            ).id
            for email, name in DEMO_CSMS
        ]
    stats = load(engine, config, now=clock.now(), owners=owners, fx=settings.fx())
    console.print(
        f"Loaded {stats.accounts:,} accounts, {stats.contacts:,} contacts, "
        f"{stats.events:,} events, {stats.support_interactions:,} support interactions, "
        f"{stats.survey_responses:,} survey answers in {stats.seconds:.0f} s"
    )
    _score_demo(engine, now=clock.now(), catalogue_path=settings.metric_catalogue)
    _churn_demo(engine, now=clock.now(), settings=settings)
    url = f"http://{host}:{port}"
    console.print(f"\n[bold]Tenure demo ready[/bold] on {db}")
    console.print(f"Open {url} and log in with", markup=False)
    console.print(f"  email:    {DEMO_ADMIN}", markup=False, soft_wrap=True)
    console.print(f"  password: {password}", markup=False, soft_wrap=True)
    if serve_:
        _serve(settings, host, port, with_worker=True)


def _score_demo(engine: Engine, *, now: datetime, catalogue_path: Path | None) -> None:
    """Health scores for the demo: weekly history over the last 12 weeks, then today."""
    from tenure.health import service as health_service
    from tenure.ingest.catalogue import load_catalogue

    catalogue = load_catalogue(catalogue_path)
    started = time.perf_counter()
    with unit_of_work(engine) as session:
        health_service.learn_baseline(session, as_of=now, catalogue=catalogue)
    for weeks in range(12, -1, -1):
        with unit_of_work(engine) as session:
            result = health_service.rescore(
                session,
                as_of=now - timedelta(weeks=weeks),
                now=now,
                catalogue=catalogue,
                publish=False,
            )
    with unit_of_work(engine) as session:
        levels = health_service.distribution(session)["levels"]
    summary = ", ".join(f"{v['accounts']:,} {v['label'].lower()}" for v in levels.values())
    console.print(
        f"Scored {result.scored:,} accounts with 12 weeks of history in "
        f"{time.perf_counter() - started:.0f} s: {summary}"
    )


def _churn_demo(engine: Engine, *, now: datetime, settings: Settings) -> None:
    """Churn models for the demo: v1 trained as of four months ago, whose weekly predictions
    since have matured (live accuracy measured, not assumed); v2 trained on everything,
    activated if not worse; today's predictions."""
    from tenure.churn import service as churn_service
    from tenure.ingest.catalogue import load_catalogue

    catalogue = load_catalogue(settings.metric_catalogue)
    started = time.perf_counter()
    options: dict[str, Any] = {
        "catalogue": catalogue,
        "edges": settings.churn_bands,
        "threshold": settings.churn_alert_threshold,
    }
    earlier = now - timedelta(days=120)
    try:
        with unit_of_work(engine) as session:
            churn_service.train_model(
                session, now=earlier, actor=Actor.cli("tenure demo"), catalogue=catalogue
            )
        for weeks in range(16, 10, -1):
            with unit_of_work(engine) as session:
                churn_service.predict(
                    session, now=now - timedelta(weeks=weeks), publish=False, **options
                )
        with unit_of_work(engine) as session:
            churn_service.mature_outcomes(session, now=now, grace_days=settings.churn_grace_days)
            report = churn_service.train_model(
                session, now=now, actor=Actor.cli("tenure demo"), catalogue=catalogue
            )
        with unit_of_work(engine) as session:
            result = churn_service.predict(session, now=now, publish=False, **options)
    except churn_service.TrainingRefused as exc:
        console.print(f"No churn model: {exc.detail}", markup=False, soft_wrap=True)
        return
    auc = report.model.metrics["lightgbm"]["roc_auc"]
    console.print(
        f"Trained churn models v1 and v{report.model.version} (validation ROC AUC {auc:.3f}; "
        f"{report.note}) and predicted {result.accounts:,} accounts in "
        f"{time.perf_counter() - started:.0f} s",
        markup=False,
        soft_wrap=True,
    )


def main() -> None:
    app()
