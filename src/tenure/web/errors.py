"""HTML error pages for browser requests (API clients get problem+json)."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import HTMLResponse

from tenure.web.templating import templates


def render_error(request: Request, status: int, title: str, detail: str) -> HTMLResponse:
    return templates.TemplateResponse(
        request,
        "error.html",
        {"status": status, "title": title, "detail": detail, "user": None, "nav": ""},
        status_code=status,
    )
