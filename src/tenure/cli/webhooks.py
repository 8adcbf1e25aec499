"""tenure webhooks ... and tenure hooks ...: outbound endpoints, incoming hooks."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

import typer
from rich.table import Table

from tenure.cli.common import cli_errors, console, fail, load_settings, ready_engine, unit_of_work
from tenure.clock import SystemClock
from tenure.kit.actor import Actor
from tenure.webhooks import service, signing
from tenure.webhooks.schemas import EndpointCreate, EndpointUpdate, HookCreate
from tenure.webhooks.sender import probe

app = typer.Typer(help="Outbound webhooks (Standard Webhooks signatures).", no_args_is_help=True)
hooks_app = typer.Typer(
    help="Incoming hooks: URLs other systems post JSON to.", no_args_is_help=True
)


def _uuid(value: str, what: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise fail(f"{what} {value!r} is not an id (see 'tenure webhooks list')") from None


def _when(value: str, what: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise fail(f"{what} {value!r} is not an ISO date or time") from None
    if parsed.tzinfo is None:
        raise fail(f"{what} {value!r} needs a time zone, e.g. 2026-06-01T00:00:00+00:00")
    return parsed


@app.command("list")
@cli_errors
def list_() -> None:
    """List endpoints."""
    with unit_of_work(ready_engine(load_settings())) as session:
        table = Table("id", "url", "events", "enabled", "failing since", "description")
        table.columns[0].no_wrap = True
        for e in service.list_endpoints(session):
            table.add_row(
                str(e.id),
                e.url,
                ",".join(e.event_types) or "all",
                "yes" if e.enabled else f"no: {e.disabled_reason or 'disabled'}",
                f"{e.failing_since:%Y-%m-%d %H:%M}" if e.failing_since else "",
                e.description,
            )
    console.print(table)


@app.command("create")
@cli_errors
def create(
    url: Annotated[str, typer.Argument(help="https URL that will receive events")],
    event: Annotated[
        list[str] | None, typer.Option(help="Event type to send (repeatable; default all)")
    ] = None,
    description: Annotated[str, typer.Option()] = "",
) -> None:
    """Create an endpoint; prints its signing secret."""
    settings = load_settings()
    with unit_of_work(ready_engine(settings)) as session:
        endpoint = service.create_endpoint(
            session,
            EndpointCreate(url=url, event_types=event or [], description=description),
            actor=Actor.cli(),
            now=SystemClock().now(),
            allow_private=settings.allow_private_destinations,
        )
        endpoint_id, secret = endpoint.id, endpoint.secret
    console.print(f"Created endpoint {endpoint_id}", markup=False)
    console.print(f"Signing secret: {secret}", markup=False, soft_wrap=True)


@app.command("disable")
@cli_errors
def disable(endpoint_id: Annotated[str, typer.Argument()]) -> None:
    """Stop sending to an endpoint (its pending deliveries wait)."""
    _set_enabled(endpoint_id, False)


@app.command("enable")
@cli_errors
def enable(endpoint_id: Annotated[str, typer.Argument()]) -> None:
    """Send to an endpoint again."""
    _set_enabled(endpoint_id, True)


def _set_enabled(endpoint_id: str, enabled: bool) -> None:
    settings = load_settings()
    with unit_of_work(ready_engine(settings)) as session:
        service.update_endpoint(
            session,
            _uuid(endpoint_id, "endpoint"),
            EndpointUpdate(enabled=enabled),
            actor=Actor.cli(),
            now=SystemClock().now(),
            allow_private=settings.allow_private_destinations,
        )
    console.print(f"Endpoint {endpoint_id} {'enabled' if enabled else 'disabled'}", markup=False)


@app.command("delete")
@cli_errors
def delete(endpoint_id: Annotated[str, typer.Argument()]) -> None:
    """Delete an endpoint and its delivery log."""
    with unit_of_work(ready_engine(load_settings())) as session:
        service.delete_endpoint(
            session, _uuid(endpoint_id, "endpoint"), actor=Actor.cli(), now=SystemClock().now()
        )
    console.print(f"Deleted endpoint {endpoint_id}", markup=False)


@app.command("rotate-secret")
@cli_errors
def rotate_secret(endpoint_id: Annotated[str, typer.Argument()]) -> None:
    """New signing secret; the previous one also signs for 24 hours."""
    with unit_of_work(ready_engine(load_settings())) as session:
        endpoint = service.rotate_secret(
            session, _uuid(endpoint_id, "endpoint"), actor=Actor.cli(), now=SystemClock().now()
        )
        secret = endpoint.secret
    console.print(f"New signing secret: {secret}", markup=False, soft_wrap=True)


@app.command("deliveries")
@cli_errors
def deliveries(
    endpoint_id: Annotated[str, typer.Argument()],
    status: Annotated[str | None, typer.Option(help="pending, delivered or failed")] = None,
    limit: Annotated[int, typer.Option(min=1, max=200)] = 20,
) -> None:
    """The newest deliveries of an endpoint."""
    with unit_of_work(ready_engine(load_settings())) as session:
        page = service.list_deliveries(
            session, endpoint_id=_uuid(endpoint_id, "endpoint"), status=status, limit=limit
        )
        table = Table("delivery", "event", "status", "attempts", "last", "ms", "created")
        table.columns[0].no_wrap = True
        for d in page.items:
            table.add_row(
                str(d.id),
                d.event_type,
                d.status,
                str(d.attempts),
                str(d.last_status_code or d.last_error or ""),
                f"{d.last_latency_ms:.0f}" if d.last_latency_ms is not None else "",
                f"{d.created_at:%Y-%m-%d %H:%M:%S}",
            )
    console.print(table)


@app.command("replay")
@cli_errors
def replay(
    target: Annotated[str, typer.Argument(help="A delivery id, or an endpoint id with --since")],
    since: Annotated[
        str | None, typer.Option(help="Replay the endpoint's range from (ISO)")
    ] = None,
    until: Annotated[str | None, typer.Option(help="... to (ISO, default now)")] = None,
    all_: Annotated[
        bool, typer.Option("--all", help="Delivered ones too (default: failed only)")
    ] = False,
) -> None:
    """Send a delivery again, or every failed delivery of an endpoint in a time range."""
    clock = SystemClock()
    with unit_of_work(ready_engine(load_settings())) as session:
        if since is None:
            service.replay_delivery(
                session, _uuid(target, "delivery"), actor=Actor.cli(), now=clock.now()
            )
            count = 1
        else:
            count = service.replay_range(
                session,
                _uuid(target, "endpoint"),
                start=_when(since, "--since"),
                end=_when(until, "--until") if until else clock.now(),
                failed_only=not all_,
                actor=Actor.cli(),
                now=clock.now(),
            )
    console.print(f"Queued {count} deliver{'y' if count == 1 else 'ies'} again")


@app.command("test")
@cli_errors
def test(
    url: Annotated[str, typer.Argument(help="URL to send a signed webhook.test message to")],
    secret: Annotated[
        str | None, typer.Option(help="whsec_ secret to sign with (default: the endpoint's)")
    ] = None,
) -> None:
    """Send a signed test message now and show the answer (exit 1 if it is not 2xx)."""
    settings = load_settings()
    secrets: tuple[str, ...]
    if secret is not None:
        if not secret.startswith(signing.PREFIX):
            raise fail("--secret must be a whsec_... signing secret")
        secrets = (secret,)
    else:
        with unit_of_work(ready_engine(settings)) as session:
            known = [e.secret for e in service.list_endpoints(session) if e.url == url]
        secrets = (known[0],) if known else (signing.new_secret(),)
        if not known:
            console.print(f"No endpoint has this URL; signed with {secrets[0]}", markup=False)
    result = probe(
        url,
        secrets,
        now=SystemClock().now(),
        allow_private=settings.allow_private_destinations,
        timeout=settings.webhook_timeout_seconds,
    )
    if result.status_code is None:
        console.print(f"FAILED {result.error} ({result.latency_ms:.0f} ms)", markup=False)
        raise typer.Exit(1)
    console.print(
        f"{'OK' if result.ok else 'FAILED'} HTTP {result.status_code} in "
        f"{result.latency_ms:.0f} ms, webhook-id {result.webhook_id}",
        markup=False,
    )
    if result.response:
        console.print(result.response, markup=False, soft_wrap=True)
    if not result.ok:
        raise typer.Exit(1)


@hooks_app.command("list")
@cli_errors
def hooks_list() -> None:
    """List incoming hooks."""
    with unit_of_work(ready_engine(load_settings())) as session:
        table = Table("id", "name", "token", "account path", "received", "last")
        for h in service.list_hooks(session):
            table.add_row(
                str(h.id),
                h.name,
                h.token_prefix + "…",
                h.account_path or "",
                str(h.received),
                f"{h.last_received_at:%Y-%m-%d %H:%M}" if h.last_received_at else "",
            )
    console.print(table)


@hooks_app.command("create")
@cli_errors
def hooks_create(
    name: Annotated[str, typer.Argument(help="Lower-case name, e.g. billing")],
    account_path: Annotated[
        str | None, typer.Option(help="Dotted path of the account's external id in the JSON")
    ] = None,
    description: Annotated[str, typer.Option()] = "",
) -> None:
    """Create an incoming hook; prints its URL path (shown once)."""
    with unit_of_work(ready_engine(load_settings())) as session:
        _, token = service.create_hook(
            session,
            HookCreate(name=name, account_path=account_path, description=description),
            actor=Actor.cli(),
            now=SystemClock().now(),
        )
    console.print(f"POST JSON to /api/v1/hooks/{token} (shown once)", markup=False, soft_wrap=True)


@hooks_app.command("delete")
@cli_errors
def hooks_delete(hook_id: Annotated[str, typer.Argument()]) -> None:
    """Delete an incoming hook: its URL stops working."""
    with unit_of_work(ready_engine(load_settings())) as session:
        service.delete_hook(
            session, _uuid(hook_id, "hook"), actor=Actor.cli(), now=SystemClock().now()
        )
    console.print(f"Deleted hook {hook_id}", markup=False)
