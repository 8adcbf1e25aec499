"""Domain errors carry their HTTP status; one handler renders them as problem+json."""

from __future__ import annotations

from typing import Any


class TenureError(Exception):
    """Base of every error a user can cause or see."""

    status: int = 400
    title: str = "Bad request"
    type_slug: str = "bad-request"

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra


class NotFound(TenureError):
    status = 404
    title = "Not found"
    type_slug = "not-found"


class Conflict(TenureError):
    status = 409
    title = "Conflict"
    type_slug = "conflict"


class InvalidInput(TenureError):
    status = 422
    title = "Invalid input"
    type_slug = "invalid-input"


class Unauthorized(TenureError):
    status = 401
    title = "Unauthorized"
    type_slug = "unauthorized"


class Forbidden(TenureError):
    status = 403
    title = "Forbidden"
    type_slug = "forbidden"


class ConfigurationError(TenureError):
    """The installation is misconfigured (unreachable database, missing secret...)."""

    status = 500
    title = "Configuration error"
    type_slug = "configuration"
