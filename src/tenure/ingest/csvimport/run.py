"""One import: read the file, map its header, parse and write it in chunks, report."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from sqlalchemy.orm import Session

from tenure.db import write_lock
from tenure.ingest.csvimport.columns import KINDS, SPECS, map_header
from tenure.ingest.csvimport.events import EventsImporter
from tenure.ingest.csvimport.kinds import (
    AccountsImporter,
    ContactsImporter,
    Context,
    Importer,
    SubscriptionsImporter,
    SupportImporter,
    SurveysImporter,
)
from tenure.ingest.csvimport.reader import ImportFailed, open_csv
from tenure.ingest.csvimport.report import ImportRejected, ImportReport, IssueLog
from tenure.kit.actor import Actor
from tenure.kit.money import DEFAULT_FX, FxRates

# Rows per service call: large enough to amortise each call's queries, small enough that
# memory stays flat whatever the file size.
CHUNK_ROWS = {"events": 5000}
DEFAULT_CHUNK_ROWS = 2000
IMPORTERS: dict[str, type[Importer[Any]]] = {
    "accounts": AccountsImporter,
    "contacts": ContactsImporter,
    "subscriptions": SubscriptionsImporter,
    "events": EventsImporter,
    "support": SupportImporter,
    "surveys": SurveysImporter,
}


def import_csv(
    session: Session,
    kind: str,
    stream: IO[bytes],
    *,
    actor: Actor,
    now: datetime,
    partial: bool = False,
    fx: FxRates = DEFAULT_FX,
    progress: Callable[[int], None] | None = None,
    file_name: str | None = None,
    chunk_rows: int | None = None,
) -> ImportReport:
    """Import a CSV of `kind` from a seekable binary stream, in the caller's transaction.

    Raises ImportRejected (nothing may be committed) when rows are bad and `partial` is
    false, ImportFailed when the file cannot be read at all. `progress` gets bytes read.
    """
    spec = SPECS.get(kind)
    if spec is None:
        raise ImportFailed(f"unknown kind {kind!r}: use one of {', '.join(KINDS)}")
    started = time.perf_counter()
    report = ImportReport(kind=kind, partial=partial, file=file_name)
    log = IssueLog(report)
    write_lock(session)
    size = chunk_rows or CHUNK_ROWS.get(kind, DEFAULT_CHUNK_ROWS)
    with open_csv(stream) as source:
        header = map_header(spec, source.header)
        ctx = Context(session, actor, now, fx, spec, header, source.header_line, log)
        importer = IMPORTERS[kind](ctx)
        header.missing += importer.missing_columns()
        for column, reason in header.errors:
            log.column(source.header_line, column, reason)
        for name in header.missing:
            log.column(source.header_line, name, "this column is required")
        if header.missing:
            # No row can be imported: count them, but do not report each one.
            report.rows = report.rejected = sum(1 for _ in source.rows)
        else:
            chunk: list[tuple[int, Any]] = []
            for line, cells in source.rows:
                report.rows += 1
                item = importer.parse(line, cells)
                if item is not None:
                    chunk.append((line, item))
                if len(chunk) >= size:
                    _write(importer, chunk, partial=partial, log=log)
                    chunk = []
                if progress is not None and report.rows % size == 0:
                    progress(source.bytes_read())
            _write(importer, chunk, partial=partial, log=log)
            if partial or log.clean or importer.checks_references:
                importer.finish()
        if progress is not None:
            progress(source.bytes_read())
    report.valid = report.rows - report.rejected
    report.errors.sort(key=lambda issue: issue.line)
    report.seconds = round(time.perf_counter() - started, 3)
    if log.clean:
        report.status = "imported"
    elif partial and not header.missing:
        report.status = "partial"
    else:
        report.status = "rejected"
        for name in ("created", "updated", "unchanged", "stored", "duplicates", "linked"):
            setattr(report, name, 0)
        raise ImportRejected(report)
    return report


def _write(
    importer: Importer[Any], chunk: list[tuple[int, Any]], *, partial: bool, log: IssueLog
) -> None:
    if chunk and (partial or log.clean or importer.checks_references):
        importer.write(chunk)


def import_path(
    session: Session,
    kind: str,
    path: Path,
    *,
    actor: Actor,
    now: datetime,
    partial: bool = False,
    fx: FxRates = DEFAULT_FX,
    progress: Callable[[int], None] | None = None,
    chunk_rows: int | None = None,
) -> ImportReport:
    """import_csv on a file; a missing or unreadable file is an ImportFailed."""
    try:
        stream = path.open("rb")
    except FileNotFoundError:
        raise ImportFailed(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ImportFailed(f"{path} is a directory, not a CSV file") from None
    except OSError as exc:
        raise ImportFailed(f"cannot read {path}: {exc.strerror}") from None
    with stream:
        return import_csv(
            session,
            kind,
            stream,
            actor=actor,
            now=now,
            partial=partial,
            fx=fx,
            progress=progress,
            file_name=path.name,
            chunk_rows=chunk_rows,
        )
