"""tenure users create|list|disable."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from tenure.auth import service as auth_service
from tenure.cli.common import (
    cli_errors,
    console,
    load_settings,
    read_password,
    ready_engine,
    unit_of_work,
)
from tenure.clock import SystemClock
from tenure.kit.actor import Actor
from tenure.kit.security import generate_password

app = typer.Typer(help="Manage staff users (admin, csm, viewer).", no_args_is_help=True)


@app.command("create")
@cli_errors
def create(
    email: Annotated[str, typer.Option(help="Login email")],
    role: Annotated[str, typer.Option(help="admin, csm or viewer")] = "csm",
    name: Annotated[str | None, typer.Option(help="Display name")] = None,
    password_stdin: Annotated[bool, typer.Option(help="Read the password from stdin")] = False,
) -> None:
    """Create a staff user; the password is prompted, read from stdin, or generated."""
    auth_service.parse_role(role)
    engine = ready_engine(load_settings())
    password = read_password(password_stdin)
    generated = password is None
    password = password or generate_password()
    with unit_of_work(engine) as session:
        user = auth_service.create_user(
            session,
            email=email,
            password=password,
            role=role,
            name=name,
            actor=Actor.cli(),
            now=SystemClock().now(),
        )
        email_out = user.email
    console.print(f"Created {role} {email_out}")
    if generated:
        console.print(f"Password (shown once): {password}", markup=False)


@app.command("list")
@cli_errors
def list_() -> None:
    """List staff users."""
    engine = ready_engine(load_settings())
    with unit_of_work(engine) as session:
        users = auth_service.list_users(session)
        table = Table("email", "name", "role", "active", "last login")
        for u in users:
            table.add_row(
                u.email,
                u.name or "",
                u.role,
                "yes" if u.is_active else "no",
                u.last_login_at.isoformat(timespec="minutes") if u.last_login_at else "",
            )
    console.print(table)


@app.command("disable")
@cli_errors
def disable(user: Annotated[str, typer.Argument(help="Email or id")]) -> None:
    """Disable a user and end their sessions."""
    engine = ready_engine(load_settings())
    with unit_of_work(engine) as session:
        record = auth_service.find_user(session, user)
        auth_service.set_user_active(
            session, record, False, actor=Actor.cli(), now=SystemClock().now()
        )
        email = record.email
    console.print(f"Disabled {email}")
