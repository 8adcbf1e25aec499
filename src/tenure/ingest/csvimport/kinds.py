"""Per kind: a row of cells to a validated item, and a chunk of items to the domain's service.

Every chunk is written in a SAVEPOINT. When a service refuses a row (`RowInvalid` carries
its position), the rows before it are written again and the rest of the chunk goes on
without it, so with --partial the good rows still land; in all-or-nothing mode the work
continues only to find every bad row, and the boundary rolls the transaction back.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from tenure.accounts import bulk
from tenure.accounts.schemas import (
    AccountUpsert,
    ContactUpsert,
    SubscriptionChangeUpsert,
    UpsertResult,
)
from tenure.ingest import pipeline
from tenure.ingest.csvimport.columns import (
    CONVERTERS,
    HeaderMap,
    Spec,
    trait_value,
)
from tenure.ingest.csvimport.report import ImportReport, IssueLog
from tenure.kit.actor import Actor
from tenure.kit.errors import TenureError
from tenure.kit.money import FxRates
from tenure.support import service as support_service
from tenure.support.schemas import SupportInteractionUpsert, SurveyResponseUpsert

Issues = list[tuple[str | None, str]]
T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)
MAX_ID = 255


@dataclass
class Context:
    session: Session
    actor: Actor
    now: datetime
    fx: FxRates
    spec: Spec
    header: HeaderMap
    header_line: int
    log: IssueLog
    report: ImportReport = field(init=False)

    def __post_init__(self) -> None:
        self.report = self.log.report


def derived_id(*parts: object) -> str:
    """A stable external id from a row's identifying values, for files that carry none."""
    text = "\x1f".join("" if p is None else str(p) for p in parts)
    return "csv-" + hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()


def _db_reason(exc: DBAPIError) -> str:
    lines = str(exc.orig or exc).strip().splitlines()
    return "refused by the database: " + (lines[0] if lines else type(exc).__name__)


class Importer(Generic[T]):
    """Parses rows into items of type T and writes chunks of them."""

    # All-or-nothing mode keeps calling the service after a bad row, because the service is
    # what finds rows that refer to unknown accounts; the transaction is rolled back anyway.
    checks_references = True

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.session = ctx.session
        self.log = ctx.log
        self.width = ctx.header.width

    def missing_columns(self) -> list[str]:
        """Columns the header lacks beyond the spec's required ones."""
        return []

    def parse(self, line: int, cells: list[str]) -> T | None:
        raise NotImplementedError

    def write(self, items: list[tuple[int, T]]) -> None:
        raise NotImplementedError

    def finish(self) -> None:
        """Called after the last chunk."""

    def column(self, name: str | None) -> str | None:
        return self.ctx.header.header_of(name) if name else None

    def check_width(self, line: int, cells: list[str]) -> bool:
        if len(cells) == self.width:
            return True
        self.log.reject(
            line, [(None, f"the row has {len(cells)} fields where the header has {self.width}")]
        )
        return False


# ---------------------------------------------------------------------------------------------
# Kinds validated by a pydantic schema of their domain


def _reason(error: ErrorDetails) -> str:
    if error["type"] == "missing":
        return "a value is required"
    message = error["msg"]
    given = error.get("input")
    if isinstance(given, str) and 0 < len(given) <= 60 and given not in message:
        message += f" (got {given!r})"
    return message


class ModelImporter(Importer[tuple[str, M]]):
    """Rows validated by the domain's schema; items are (external id, model)."""

    model: type[M]
    # What identifies a row that has no external id (its id is then derived from these).
    identified_by = ""

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.seen: dict[str, int] = {}  # external id -> line, to refuse repeats in one file
        self.columns = ctx.header.columns
        self.derived = False  # whether the last row's external id was derived

    def values(self, cells: list[str], issues: Issues) -> dict[str, Any]:
        values: dict[str, Any] = {}
        traits: dict[str, Any] = {}
        for column in self.columns:
            text = cells[column.index].strip()
            if not text:
                continue  # an empty cell is a field not given: the stored value stays
            if column.field is None:
                traits[column.header] = trait_value(text)
                continue
            convert = CONVERTERS.get(column.convert)
            if convert is None:
                values[column.field] = text
                continue
            try:
                values[column.field] = convert(text)
            except ValueError as exc:
                issues.append((column.header, str(exc)))
        if traits:
            values["traits"] = {**values.get("traits", {}), **traits}
        return values

    def validate(self, values: dict[str, Any], issues: Issues) -> M | None:
        try:
            model = self.model.model_validate(values)
        except ValidationError as exc:
            reported = {column for column, _ in issues}
            for error in exc.errors():
                loc = error.get("loc", ())
                column = self.column(str(loc[0])) if loc else None
                if column is None or column not in reported:
                    issues.append((column, _reason(error)))
            return None
        return model if not issues else None

    def identity(self, values: dict[str, Any], model: M, issues: Issues) -> str | None:
        """The row's external id (given, or derived from what identifies it)."""
        raise NotImplementedError

    def parse(self, line: int, cells: list[str]) -> tuple[str, M] | None:
        if not self.check_width(line, cells):
            return None
        issues: Issues = []
        values = self.values(cells, issues)
        model = self.validate(values, issues)
        self.derived = False
        external_id = self.identity(values, model, issues) if model is not None else None
        if external_id is not None and (first := self.seen.get(external_id)) is not None:
            if self.derived:
                reason = f"repeats line {first}: no external_id, and the same {self.identified_by}"
            else:
                reason = f"{external_id!r} is already on line {first}"
            issues.append((self.column("external_id"), reason))
        if issues or model is None or external_id is None:
            self.log.reject(line, issues or [(None, "invalid row")])
            return None
        self.seen[external_id] = line
        return external_id, model

    def add(self, result: UpsertResult) -> None:
        self.ctx.report.created += result.created
        self.ctx.report.updated += result.updated
        self.ctx.report.unchanged += result.unchanged


class BulkImporter(ModelImporter[M]):
    """Kinds whose service upserts a list of rows at once (accounts, contacts, subscriptions)."""

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.deferred: list[tuple[int, tuple[str, M]]] = []

    def call(self, rows: Sequence[M]) -> UpsertResult:
        raise NotImplementedError

    def deferrable(self, exc: bulk.RowInvalid) -> bool:
        """A row that may succeed once later rows of the file are in (children before parents)."""
        return False

    def identity(self, values: dict[str, Any], model: M, issues: Issues) -> str | None:
        external_id: str | None = getattr(model, "external_id", None)
        return external_id

    def write(self, items: list[tuple[int, tuple[str, M]]]) -> None:
        self._run(items, final=False)

    def _run(self, items: list[tuple[int, tuple[str, M]]], *, final: bool) -> None:
        start = 0
        while start < len(items):
            segment = items[start:]
            try:
                with self.session.begin_nested():
                    result = self.call([model for _, (_, model) in segment])
            except bulk.RowInvalid as exc:
                position = min(max(exc.position, 0), len(segment) - 1)
                line = segment[position][0]
                if not final and self.deferrable(exc):
                    self.deferred.append(segment[position])
                else:
                    self.log.reject(line, [(self.column(exc.field), exc.detail)])
                if position:
                    self._run(segment[:position], final=final)  # passed once: pass again
                start += position + 1
                continue
            except DBAPIError as exc:
                self._isolate(segment, exc, final=final)
                return
            self.add(result)
            return

    def _isolate(
        self, items: list[tuple[int, tuple[str, M]]], exc: DBAPIError, *, final: bool
    ) -> None:
        """The database refused a chunk: halve it until the bad rows are alone."""
        if len(items) == 1:
            self.log.reject(items[0][0], [(None, _db_reason(exc))])
            return
        middle = len(items) // 2
        self._run(items[:middle], final=final)
        self._run(items[middle:], final=final)

    def finish(self) -> None:
        size = 2000
        pending = self.deferred
        while pending:
            self.deferred = []
            for start in range(0, len(pending), size):
                self._run(pending[start : start + size], final=False)
            if len(self.deferred) >= len(pending):  # no progress: they fail for good
                stuck, self.deferred = self.deferred, []
                for start in range(0, len(stuck), size):
                    self._run(stuck[start : start + size], final=True)
                return
            pending = self.deferred


class AccountsImporter(BulkImporter[AccountUpsert]):
    model = AccountUpsert

    def call(self, rows: Sequence[AccountUpsert]) -> UpsertResult:
        result = bulk.upsert_accounts(
            self.session, rows, actor=self.ctx.actor, now=self.ctx.now, fx=self.ctx.fx
        )
        # Events that arrived before these accounts are attached (and counted) now.
        pipeline.link_waiting(
            self.session, now=self.ctx.now, account_external_ids=[r.external_id for r in rows]
        )
        return result

    def deferrable(self, exc: bulk.RowInvalid) -> bool:
        return exc.field == "parent_external_id" and "does not exist" in exc.detail


class ContactsImporter(BulkImporter[ContactUpsert]):
    model = ContactUpsert

    def call(self, rows: Sequence[ContactUpsert]) -> UpsertResult:
        result = bulk.upsert_contacts(self.session, rows, actor=self.ctx.actor, now=self.ctx.now)
        pipeline.link_waiting(
            self.session, now=self.ctx.now, contact_external_ids=[r.external_id for r in rows]
        )
        return result


class SubscriptionsImporter(BulkImporter[SubscriptionChangeUpsert]):
    model = SubscriptionChangeUpsert
    identified_by = "account, kind and occurred_at"

    def identity(
        self, values: dict[str, Any], model: SubscriptionChangeUpsert, issues: Issues
    ) -> str | None:
        if model.external_id is None:
            self.derived = True
            # Without an id a re-import would record the change twice; the account, kind
            # and time identify it (a corrected amount then updates the same change).
            model.external_id = derived_id(
                "subscriptions",
                model.account_external_id,
                model.kind,
                model.occurred_at.isoformat(),
            )
        return model.external_id

    def call(self, rows: Sequence[SubscriptionChangeUpsert]) -> UpsertResult:
        return bulk.upsert_subscription_changes(
            self.session, rows, actor=self.ctx.actor, now=self.ctx.now
        )


# ---------------------------------------------------------------------------------------------
# Support interactions and surveys: upserted one by one by external id


class RowByRowImporter(ModelImporter[M]):
    # Fields that, with the account and contact, identify a row that has no external id.
    identifying: tuple[str, ...] = ()
    time_field: str = ""

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self._external_id: str | None = None

    def missing_columns(self) -> list[str]:
        index = self.ctx.header.index
        if "external_id" in index or self.time_field in index:
            return []
        return [f"external_id or {self.time_field}"]

    def values(self, cells: list[str], issues: Issues) -> dict[str, Any]:
        values = super().values(cells, issues)
        self._external_id = values.pop("external_id", None)
        return values

    def identity(self, values: dict[str, Any], model: M, issues: Issues) -> str | None:
        given: str | None = self._external_id
        column = self.column("external_id")
        if given is not None:
            if len(given) > MAX_ID:
                issues.append((column, f"is longer than {MAX_ID} characters"))
                return None
            return given
        moment = values.get(self.time_field)
        if not isinstance(moment, datetime):
            issues.append(
                (
                    column,
                    f"a row needs an external_id or a {self.time_field} to be recognised "
                    "when the file is imported again",
                )
            )
            return None
        self.derived = True
        parts = [getattr(model, name) for name in self.identifying]
        return derived_id(self.ctx.spec.kind, *parts, moment.isoformat())

    def call(self, external_id: str, model: M) -> tuple[Any, bool]:
        raise NotImplementedError

    def write(self, items: list[tuple[int, tuple[str, M]]]) -> None:
        created = updated = unchanged = 0
        refused: list[tuple[int, Issues]] = []
        try:
            with self.session.begin_nested():
                for line, (external_id, model) in items:
                    try:
                        row, was_created = self.call(external_id, model)
                    except TenureError as exc:
                        refused.append((line, [self._issue(exc)]))
                        continue
                    if was_created:
                        created += 1
                    elif self.session.is_modified(row):
                        updated += 1
                    else:
                        unchanged += 1
        except DBAPIError as exc:
            if len(items) == 1:
                self.log.reject(items[0][0], [(None, _db_reason(exc))])
                return
            middle = len(items) // 2
            self.write(items[:middle])
            self.write(items[middle:])
            return
        for line, issues in refused:
            self.log.reject(line, issues)
        self.add(UpsertResult(created=created, updated=updated, unchanged=unchanged))

    def _issue(self, exc: TenureError) -> tuple[str | None, str]:
        name = exc.extra.get("field")
        errors = exc.extra.get("errors")
        reason = exc.detail
        if isinstance(errors, list) and errors and isinstance(errors[0], dict):
            reason = str(errors[0].get("message") or reason)
        return self.column(name if isinstance(name, str) else None), reason


class SupportImporter(RowByRowImporter[SupportInteractionUpsert]):
    model = SupportInteractionUpsert
    identifying = ("account_external_id", "contact_external_id", "type", "channel")
    time_field = "opened_at"
    identified_by = "account, contact, type, channel and opened_at"

    def call(self, external_id: str, model: SupportInteractionUpsert) -> tuple[Any, bool]:
        return support_service.upsert_interaction(
            self.session, external_id, model, actor=self.ctx.actor, now=self.ctx.now
        )


class SurveysImporter(RowByRowImporter[SurveyResponseUpsert]):
    model = SurveyResponseUpsert
    identifying = ("account_external_id", "contact_external_id", "kind")
    time_field = "responded_at"
    identified_by = "account, contact, kind and responded_at"

    def call(self, external_id: str, model: SurveyResponseUpsert) -> tuple[Any, bool]:
        return support_service.upsert_survey(
            self.session, external_id, model, actor=self.ctx.actor, now=self.ctx.now
        )
