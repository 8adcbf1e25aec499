"""Shared plumbing of the CLI: settings, database, one-line errors with exit code 2."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import ParamSpec, TypeVar

import typer
from pydantic import ValidationError
from pydantic_settings import SettingsError
from rich.console import Console
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from tenure.config import Settings
from tenure.db import check_database, make_engine, make_session_factory, migration_status
from tenure.kit.errors import ConfigurationError, TenureError

# Piped or captured output gets no terminal width: tables must not cut ids and URLs to
# "http…" there, so they get a wide line instead of rich's default 80 columns.
console = Console(highlight=False, width=None if sys.stdout.isatty() else 240)
err_console = Console(stderr=True, highlight=False)

P = ParamSpec("P")
R = TypeVar("R")


def fail(message: str, code: int = 2) -> typer.Exit:
    err_console.print(f"error: {message}", markup=False, soft_wrap=True)
    return typer.Exit(code)


def cli_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Turn domain and configuration errors into one line on stderr and exit code 2."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except TenureError as exc:
            raise fail(exc.detail) from None
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first.get("loc", ()))
            if exc.title == "Settings":
                raise fail(f"invalid setting TENURE_{where.upper()}: {first.get('msg')}") from None
            raise fail(f"invalid {where}: {first.get('msg')}") from None

    return wrapper


def load_settings(database_url: str | None = None) -> Settings:
    try:
        settings = Settings()
    except SettingsError as exc:
        # e.g. a JSON setting (TENURE_SCHEDULES, TENURE_FX_RATES) that is not JSON
        raise ConfigurationError(f"invalid setting: {exc}") from None
    if database_url:
        settings = settings.model_copy(
            update={"database_url": Settings(database_url=database_url).database_url}
        )
    return settings


def engine_for(settings: Settings) -> Engine:
    try:
        return make_engine(settings.database_url)
    except Exception as exc:  # malformed URLs, unknown drivers
        raise ConfigurationError(f"invalid TENURE_DATABASE_URL: {exc}") from exc


def ready_engine(settings: Settings) -> Engine:
    """An engine on a reachable database whose schema is current."""
    engine = engine_for(settings)
    check_database(engine)
    current, head = migration_status(engine)
    if current != head:
        raise ConfigurationError(
            f"the database schema is at {current or 'nothing'}, expected {head}: run 'tenure init'"
        )
    return engine


@contextmanager
def unit_of_work(engine: Engine) -> Iterator[Session]:
    with make_session_factory(engine)() as session, session.begin():
        yield session


def read_password(from_stdin: bool, *, confirm: bool = True) -> str | None:
    """A password from stdin or an interactive prompt; None means: generate one."""
    if from_stdin:
        value = sys.stdin.readline().rstrip("\n")
        if not value:
            raise ConfigurationError("no password on stdin")
        return value
    if sys.stdin.isatty():
        value = typer.prompt(
            "Password (leave empty to generate one)",
            default="",
            hide_input=True,
            confirmation_prompt=confirm,
            show_default=False,
        )
        return value or None
    return None
