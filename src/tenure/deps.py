"""Request-scoped dependencies shared by every router: database session, clock, settings."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from tenure.clock import Clock
from tenure.config import Settings
from tenure.hub.live import LiveFeed
from tenure.kit.money import FxRates


@dataclass
class AppState:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    clock: Clock
    secret_key: str
    fx: FxRates
    live: LiveFeed


def app_state(request: Request) -> AppState:
    return request.app.state.tenure  # type: ignore[no-any-return]


def _db_session(request: Request) -> Iterator[Session]:
    """One transaction per request, committed when the handler returns, before the response."""
    session = app_state(request).sessions()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def _clock(request: Request) -> Clock:
    return app_state(request).clock


DB = Annotated[Session, Depends(_db_session, scope="function")]
ClockDep = Annotated[Clock, Depends(_clock)]
State = Annotated[AppState, Depends(app_state)]
