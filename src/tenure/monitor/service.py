"""Readiness checks: is the database reachable and migrated, is Redis (if configured) up."""

from __future__ import annotations

from dataclasses import dataclass, field

import redis
from sqlalchemy import Engine

from tenure.db import check_database, migration_status
from tenure.kit.errors import ConfigurationError


@dataclass
class Readiness:
    ready: bool
    checks: dict[str, dict[str, str]] = field(default_factory=dict)


def readiness(engine: Engine, redis_url: str | None) -> Readiness:
    checks: dict[str, dict[str, str]] = {}
    try:
        check_database(engine)
        current, head = migration_status(engine)
        if current == head:
            checks["database"] = {"status": "ok", "revision": current or ""}
        else:
            checks["database"] = {
                "status": "fail",
                "detail": f"schema at {current or 'nothing'}, expected {head}: run 'tenure init'",
            }
    except ConfigurationError as exc:
        checks["database"] = {"status": "fail", "detail": exc.detail}
    if redis_url:
        client = redis.Redis.from_url(redis_url, socket_connect_timeout=2, socket_timeout=2)
        try:
            client.ping()
            checks["redis"] = {"status": "ok"}
        except redis.RedisError as exc:
            checks["redis"] = {"status": "fail", "detail": str(exc).splitlines()[0]}
        finally:
            client.close()
    return Readiness(ready=all(c["status"] == "ok" for c in checks.values()), checks=checks)
