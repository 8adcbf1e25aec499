"""The FastAPI application factory: routers, middleware, error handlers."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from importlib.resources import files
from typing import Any
from urllib.parse import urlencode

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy import Engine
from starlette.exceptions import HTTPException as StarletteHTTPException

from tenure import __version__
from tenure.accounts.api import (
    contacts_router,
    notes_router,
    periods_router,
    subscriptions_router,
)
from tenure.accounts.api import router as accounts_router
from tenure.auth.api import router as auth_router
from tenure.churn.api import router as churn_router
from tenure.clock import Clock, SystemClock
from tenure.config import Settings, get_settings
from tenure.db import make_engine, make_session_factory
from tenure.deps import AppState
from tenure.health.api import router as health_router
from tenure.hub.api import router as hub_router
from tenure.hub.live import LiveFeed, RedisLiveFeed
from tenure.ingest.api import router as metrics_router
from tenure.ingest.import_api import router as imports_router
from tenure.ingest.tracking import router as tracking_router
from tenure.kit.errors import TenureError
from tenure.kit.problems import problem_response
from tenure.logging import get_logger
from tenure.monitor.api import router as monitor_router
from tenure.support.api import router as support_router
from tenure.web import errors as web_errors
from tenure.web.churn import router as web_churn_router
from tenure.web.pages import LoginRequired
from tenure.web.routes import router as web_router
from tenure.webhooks.api import deliveries_router as webhook_deliveries_router
from tenure.webhooks.api import hooks_admin, hooks_public
from tenure.webhooks.api import router as webhooks_router

log = get_logger("tenure.http")

_HTTP_TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Payload too large",
    415: "Unsupported media type",
    422: "Invalid input",
    429: "Too many requests",
}
_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'"
)
# Swagger UI starts itself with an inline script; it is served only at /docs.
_CSP_DOCS = _CSP.replace("script-src 'self'", "script-src 'self' 'unsafe-inline'").replace(
    "style-src 'self'", "style-src 'self' 'unsafe-inline'"
)


def _wants_html(request: Request) -> bool:
    path = request.url.path
    if path.startswith(("/api/", "/v1/", "/healthz", "/readyz")):
        return False
    return "text/html" in request.headers.get("accept", "")


def _field_path(loc: tuple[Any, ...] | list[Any]) -> str:
    return ".".join(str(part) for part in loc)


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(TenureError)
    async def tenure_error(request: Request, exc: TenureError) -> Response:
        if isinstance(exc, LoginRequired):
            return RedirectResponse("/login?" + urlencode({"next": exc.detail}), status_code=303)
        if _wants_html(request):
            return web_errors.render_error(request, exc.status, exc.title, exc.detail)
        return problem_response(
            exc.status,
            exc.title,
            exc.detail,
            type_slug=exc.type_slug,
            instance=request.url.path,
            **exc.extra,
        )

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        errors = [
            {
                "field": _field_path(err.get("loc", ())),
                "message": err.get("msg", "invalid"),
                "type": err.get("type", ""),
            }
            for err in exc.errors()
        ]
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors) or "invalid request"
        if _wants_html(request):
            return web_errors.render_error(request, 422, "Invalid input", detail)
        return problem_response(
            422,
            "Invalid input",
            detail,
            type_slug="invalid-input",
            instance=request.url.path,
            errors=errors,
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        title = _HTTP_TITLES.get(exc.status_code, "Error")
        detail = exc.detail if isinstance(exc.detail, str) else title
        if exc.status_code == 404 and detail == "Not Found":
            detail = f"nothing at {request.url.path}"
        if _wants_html(request):
            return web_errors.render_error(request, exc.status_code, title, detail)
        return problem_response(
            exc.status_code,
            title,
            detail,
            instance=request.url.path,
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error", path=request.url.path)
        detail = "an unexpected error occurred; it has been logged"
        if _wants_html(request):
            return web_errors.render_error(request, 500, "Internal error", detail)
        return problem_response(500, "Internal error", detail, instance=request.url.path)


def create_app(
    settings: Settings | None = None,
    *,
    clock: Clock | None = None,
    engine: Engine | None = None,
    with_worker: bool = False,
    live: LiveFeed | None = None,
) -> FastAPI:
    """Build the application. Tests pass their own settings, clock and engine.

    `with_worker` runs the worker (dispatch loop and periodic jobs) inside this process.
    """
    settings = settings or get_settings()
    engine = engine or make_engine(settings.database_url)
    if live is None:
        live = RedisLiveFeed(settings.redis_url) if settings.redis_url else LiveFeed()
    sessions = make_session_factory(engine)
    live.attach(sessions)
    state = AppState(
        settings=settings,
        engine=engine,
        sessions=sessions,
        clock=clock or SystemClock(),
        secret_key=settings.resolved_secret_key(),
        fx=settings.fx(),
        live=live,
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        live.start()
        worker = None
        if with_worker:
            from tenure.worker.runtime import Worker

            worker = Worker(settings, engine=engine, sessions=sessions, clock=state.clock)
            worker.start()
        try:
            yield
        finally:
            if worker is not None:
                worker.stop()
            live.stop()

    app = FastAPI(
        lifespan=lifespan,
        title="Tenure",
        version=__version__,
        description="Customer success platform: accounts, health, churn, interventions.",
        docs_url=None,
        redoc_url=None,
        openapi_url="/openapi.json",
    )
    app.state.tenure = state
    _install_error_handlers(app)

    @app.middleware("http")
    async def headers_and_log(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        started = time.perf_counter()
        response = await call_next(request)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault("X-Frame-Options", "DENY")
        csp = _CSP_DOCS if request.url.path == "/docs" else _CSP
        response.headers.setdefault("Content-Security-Policy", csp)
        log.info(
            "request",
            method=request.method,
            path=request.url.path,
            status=response.status_code,
            ms=round((time.perf_counter() - started) * 1000, 1),
        )
        return response

    static_dir = files("tenure.web").joinpath("static")
    app.mount("/static", StaticFiles(directory=str(static_dir)), name="static")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="Tenure API",
            swagger_js_url="/static/swagger/swagger-ui-bundle.js",
            swagger_css_url="/static/swagger/swagger-ui.css",
            swagger_favicon_url="/static/swagger/favicon-32x32.png",
            swagger_ui_parameters={"validatorUrl": None},
        )

    app.include_router(monitor_router)
    app.include_router(tracking_router)
    app.include_router(metrics_router)
    app.include_router(imports_router)
    app.include_router(auth_router)
    app.include_router(accounts_router)
    app.include_router(contacts_router)
    app.include_router(subscriptions_router)
    app.include_router(periods_router)
    app.include_router(notes_router)
    app.include_router(health_router)
    app.include_router(churn_router)
    app.include_router(support_router)
    app.include_router(hub_router)
    app.include_router(webhooks_router)
    app.include_router(webhook_deliveries_router)
    app.include_router(hooks_admin)
    app.include_router(hooks_public)
    app.include_router(web_router)
    app.include_router(web_churn_router)
    return app
