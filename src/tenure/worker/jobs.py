"""Periodic jobs, declared next to their task with a default cron expression.

    @periodic("auth.prune_sessions", "17 * * * *")
    def prune_sessions(ctx: JobContext) -> None: ...

`TENURE_SCHEDULES='{"auth.prune_sessions": "0 3 * * *"}'` changes a job's schedule
("off" disables it). Jobs are idempotent: running one twice does no harm.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from tenure.clock import Clock
from tenure.config import Settings
from tenure.kit.errors import ConfigurationError


@dataclass(frozen=True)
class JobContext:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    clock: Clock


Job = Callable[[JobContext], object]


@dataclass(frozen=True)
class PeriodicJob:
    name: str
    cron: str
    run: Job
    doc: str


_PERIODIC: dict[str, PeriodicJob] = {}


@dataclass(frozen=True)
class Tick:
    """Short work the dispatch loop runs every few seconds (e.g. debounced rescoring):
    a cron minute is too coarse for "within seconds"."""

    name: str
    seconds: float
    run: Job


_TICKS: dict[str, Tick] = {}


def every(name: str, seconds: float) -> Callable[[Job], Job]:
    """Run `func` from the dispatch loop at most every `seconds`."""

    def register(func: Job) -> Job:
        if name in _TICKS and _TICKS[name].run is not func:
            raise RuntimeError(f"tick {name} is declared twice")
        _TICKS[name] = Tick(name, seconds, func)
        return func

    return register


def ticks() -> dict[str, Tick]:
    return dict(_TICKS)


def periodic(name: str, cron: str) -> Callable[[Job], Job]:
    """Register `func` as the periodic job `name` (`domain.verb`) on `cron` by default."""
    parse_cron(cron, name)

    def register(func: Job) -> Job:
        if name in _PERIODIC and _PERIODIC[name].run is not func:
            raise RuntimeError(f"periodic job {name} is declared twice")
        _PERIODIC[name] = PeriodicJob(name, cron, func, (func.__doc__ or "").strip())
        return func

    return register


def parse_cron(expression: str, name: str) -> tuple[str, str, str, str, str]:
    """The five fields of a cron expression; ConfigurationError naming the job otherwise."""
    from huey import crontab

    fields = expression.split()
    if len(fields) != 5:
        raise ConfigurationError(
            f"schedule of {name}: {expression!r} is not a cron expression "
            "(minute hour day month weekday)"
        )
    minute, hour, day, month, weekday = fields
    try:
        crontab(minute, hour, day, month, weekday, strict=True)
    except ValueError as exc:
        raise ConfigurationError(f"schedule of {name}: {expression!r}: {exc}") from None
    return minute, hour, day, month, weekday


def registered() -> dict[str, PeriodicJob]:
    """Every periodic job, once the task modules are imported (see runtime.JOB_MODULES)."""
    return dict(_PERIODIC)


def schedule(settings: Settings) -> dict[str, str | None]:
    """Job name -> cron expression in effect (None: switched off)."""
    unknown = sorted(settings.schedules.keys() - _PERIODIC.keys())
    if unknown:
        raise ConfigurationError(
            f"TENURE_SCHEDULES names unknown jobs: {', '.join(unknown)} "
            f"(known: {', '.join(sorted(_PERIODIC))})"
        )
    result: dict[str, str | None] = {}
    for name, job in sorted(_PERIODIC.items()):
        expression = settings.schedules.get(name, job.cron)
        if expression.strip().lower() == "off":
            result[name] = None
            continue
        parse_cron(expression, name)
        result[name] = expression
    return result
