"""RFC 9457 problem details for every HTTP error."""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse

PROBLEM_MEDIA_TYPE = "application/problem+json"
TYPE_BASE = "https://tenure.dev/problems/"


def problem_response(
    status: int,
    title: str,
    detail: str,
    *,
    type_slug: str | None = None,
    instance: str | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    code = (type_slug or title.lower()).replace("-", "_").replace(" ", "_")
    body: dict[str, Any] = {
        "type": TYPE_BASE + type_slug if type_slug else "about:blank",
        "title": title,
        "status": status,
        "detail": detail,
        # Tracking SDKs (RudderStack, Segment) read `code` and `message`; every client may.
        "code": code,
        "message": detail,
    }
    if instance:
        body["instance"] = instance
    body.update(extra)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_MEDIA_TYPE, headers=headers)
