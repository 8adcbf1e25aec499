"""Routes: POST /api/v1/imports/{kind} (the CSV file as the request body)."""

from __future__ import annotations

import tempfile
import zlib
from typing import IO, Annotated, Any

from fastapi import APIRouter, Query, Request
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from tenure.auth.dependencies import Writer
from tenure.deps import DB, AppState, State
from tenure.ingest.csvimport import ImportReport, Kind, import_csv
from tenure.kit.actor import Actor
from tenure.kit.errors import TenureError
from tenure.kit.problems import PROBLEM_MEDIA_TYPE

router = APIRouter(prefix="/api/v1/imports", tags=["imports"])

MAX_IMPORT_BYTES = 2 * 2**30  # after decompression
SPOOL_BYTES = 8 * 2**20  # larger uploads go to a temporary file, never whole into memory
CSV_TYPES = frozenset(
    {
        "text/csv",
        "application/csv",
        "text/plain",
        "text/tab-separated-values",
        "application/vnd.ms-excel",
        "application/octet-stream",
    }
)


class UnsupportedMediaType(TenureError):
    status = 415
    title = "Unsupported media type"
    type_slug = "unsupported-media-type"


class PayloadTooLarge(TenureError):
    status = 413
    title = "Payload too large"
    type_slug = "payload-too-large"


def _check_content_type(request: Request) -> None:
    header = request.headers.get("content-type")
    if header is None:
        return
    media, _, params = header.partition(";")
    if media.strip().lower() not in CSV_TYPES:
        raise UnsupportedMediaType(
            f"send the CSV file itself as the request body with Content-Type: text/csv "
            f"(got {media.strip() or 'nothing'})"
        )
    for param in params.split(";"):
        name, _, value = param.partition("=")
        charset = value.strip().strip('"').lower()
        if name.strip().lower() == "charset" and charset not in ("utf-8", "utf8", "us-ascii"):
            raise UnsupportedMediaType(f"the CSV must be UTF-8 (charset {charset} given)")


async def _spool(request: Request, target: IO[bytes]) -> None:
    """Copy the body (gunzipped when sent with Content-Encoding: gzip) to `target`."""
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("identity", "gzip", "x-gzip"):
        raise UnsupportedMediaType(f"Content-Encoding {encoding!r} is not supported (use gzip)")
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS) if encoding != "identity" else None
    size = 0
    async for chunk in request.stream():
        if inflater is not None:
            try:
                # Bounded output per step: a small bomb cannot expand past the limit at once.
                chunk = inflater.decompress(chunk, MAX_IMPORT_BYTES + 1 - size)
            except zlib.error as exc:
                raise UnsupportedMediaType(f"the body is not valid gzip: {exc}") from None
            if inflater.unconsumed_tail:
                raise PayloadTooLarge(f"the CSV is larger than {MAX_IMPORT_BYTES} bytes")
        size += len(chunk)
        if size > MAX_IMPORT_BYTES:
            raise PayloadTooLarge(f"the CSV is larger than {MAX_IMPORT_BYTES} bytes")
        target.write(chunk)
    target.seek(0)


def _import(
    db: Session, state: AppState, actor: Actor, kind: str, body: IO[bytes], partial: bool
) -> ImportReport:
    # Authentication read (and may have touched the key) in its own transaction: close it,
    # so the import starts as a writer (BEGIN IMMEDIATE on SQLite) and stays all-or-nothing.
    db.commit()
    return import_csv(
        db,
        kind,
        body,
        actor=actor,
        now=state.clock.now(),
        partial=partial,
        fx=state.fx,
    )


_REPORT_422: dict[str, Any] = {
    "description": "Rows are bad and the import was all-or-nothing (nothing stored; the "
    "report is in `report`), or the file cannot be read",
    "content": {PROBLEM_MEDIA_TYPE: {}},
}


@router.post(
    "/{kind}",
    response_model=ImportReport,
    summary="Import a CSV file (accounts, contacts, subscriptions, events, support, surveys)",
    responses={
        422: _REPORT_422,
        413: {"description": "Too large"},
        415: {"description": "Not CSV"},
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"text/csv": {"schema": {"type": "string", "format": "binary"}}},
        }
    },
)
async def import_file(
    kind: Kind,
    request: Request,
    db: DB,
    state: State,
    actor: Writer,
    partial: Annotated[
        bool, Query(description="Import the good rows even when some are rejected")
    ] = False,
) -> ImportReport:
    """The CSV as the body (UTF-8; `,` `;` tab or `|`; gzip allowed). Rows are upserted by
    external id, so sending a file again changes nothing. All or nothing unless `partial`:
    then the good rows are stored and the bad ones listed in the report."""
    _check_content_type(request)
    with tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES) as body:
        await _spool(request, body)
        return await run_in_threadpool(_import, db, state, actor, kind, body, partial)
