"""tenure keys create|list|revoke."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from tenure.auth import service as auth_service
from tenure.cli.common import cli_errors, console, load_settings, ready_engine, unit_of_work
from tenure.clock import SystemClock
from tenure.kit.actor import Actor

app = typer.Typer(
    help="Manage API keys (scopes: ingest, read, write, admin).", no_args_is_help=True
)


@app.command("create")
@cli_errors
def create(
    name: Annotated[str, typer.Option(help="What the key is for")],
    scope: Annotated[list[str], typer.Option(help="ingest, read, write or admin; repeatable")],
) -> None:
    """Create an API key. The key is printed once; only its hash is stored."""
    auth_service.parse_scopes(scope)
    engine = ready_engine(load_settings())
    with unit_of_work(engine) as session:
        created = auth_service.create_api_key(
            session, name=name, scopes=scope, actor=Actor.cli(), now=SystemClock().now()
        )
        prefix, scopes = created.record.prefix, created.record.scopes
    console.print(f"Created key {prefix}… with scopes {', '.join(scopes)}")
    console.print(f"Key (shown once): {created.key}", markup=False)


@app.command("list")
@cli_errors
def list_() -> None:
    """List API keys (prefixes only)."""
    engine = ready_engine(load_settings())
    with unit_of_work(engine) as session:
        table = Table("prefix", "name", "scopes", "created", "last used", "revoked")
        table.columns[0].no_wrap = True
        for k in auth_service.list_api_keys(session):
            table.add_row(
                k.prefix,
                k.name,
                ",".join(k.scopes),
                f"{k.created_at:%Y-%m-%d}",
                f"{k.last_used_at:%Y-%m-%d}" if k.last_used_at else "",
                f"{k.revoked_at:%Y-%m-%d}" if k.revoked_at else "",
            )
    console.print(table)


@app.command("revoke")
@cli_errors
def revoke(key: Annotated[str, typer.Argument(help="Key id or prefix")]) -> None:
    """Revoke an API key: it stops working at once."""
    engine = ready_engine(load_settings())
    with unit_of_work(engine) as session:
        record = auth_service.find_api_key(session, key)
        auth_service.revoke_api_key(session, record, actor=Actor.cli(), now=SystemClock().now())
        prefix = record.prefix
    console.print(f"Revoked {prefix}…")
