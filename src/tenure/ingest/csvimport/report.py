"""What an import did: counts, and the bad rows with line, column and reason."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from tenure.kit.errors import InvalidInput

MAX_LISTED = 1000  # errors listed in a report; all of them are counted

Status = Literal["imported", "partial", "rejected"]
NOUNS = {
    "subscriptions": "subscription changes",
    "support": "support interactions",
    "surveys": "survey responses",
}


class RowIssue(BaseModel):
    line: int = Field(description="Line in the file where the row starts (header = 1)")
    column: str | None = Field(description="Column as named in the file, if one is at fault")
    reason: str


class ImportReport(BaseModel):
    kind: str
    file: str | None = None
    partial: bool = Field(description="Good rows imported even though others were rejected")
    status: Status = Field(
        "imported",
        description="imported: every row; partial: the good rows (--partial); "
        "rejected: nothing, because some rows were bad",
    )
    rows: int = Field(0, description="Data rows read (blank lines not counted)")
    valid: int = Field(0, description="Rows without errors")
    rejected: int = Field(0, description="Rows with at least one error")
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    stored: int = Field(0, description="events: new events stored")
    duplicates: int = Field(0, description="events: already stored, or repeated in the file")
    linked: int = Field(0, description="events: waiting events attached to their account")
    header_errors: int = Field(0, description="Unknown, repeated or missing columns")
    error_count: int = Field(0, description="All errors, also those beyond the list")
    errors: list[RowIssue] = Field(
        default_factory=list, description=f"The first {MAX_LISTED} errors, by line"
    )
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error_count == 0

    def summary(self) -> str:
        """One line saying what happened."""
        if self.status == "rejected":
            parts = []
            if self.rejected:
                parts.append(f"{self.rejected:,} of {self.rows:,} rows are invalid")
            if self.header_errors:
                parts.append(f"{self.header_errors:,} problems with the columns")
            first = self.errors[0] if self.errors else None
            where = ""
            if first is not None:
                column = f", column {first.column!r}" if first.column else ""
                where = f" (first: line {first.line}{column}: {first.reason})"
            return f"Nothing imported: {' and '.join(parts)}{where}"
        if self.kind == "events":
            counts = (
                f"{self.stored:,} stored, {self.duplicates:,} duplicates, {self.linked:,} linked"
            )
        else:
            counts = (
                f"{self.created:,} created, {self.updated:,} updated, {self.unchanged:,} unchanged"
            )
        noun = NOUNS.get(self.kind, self.kind)
        if self.status == "partial":
            return (
                f"Imported {self.valid:,} of {self.rows:,} {noun}: {counts}; "
                f"{self.rejected:,} rows rejected ({self.error_count:,} errors)"
            )
        return f"Imported {self.valid:,} {noun}: {counts}"


class ImportRejected(InvalidInput):
    """Some rows are bad and the import was all-or-nothing: nothing was stored."""

    title = "Import rejected"
    type_slug = "import-rejected"

    def __init__(self, report: ImportReport) -> None:
        super().__init__(report.summary(), report=report.model_dump(mode="json"))
        self.report = report


class IssueLog:
    """Collects errors into a report: all counted, the first MAX_LISTED kept."""

    def __init__(self, report: ImportReport, limit: int = MAX_LISTED) -> None:
        self.report = report
        self.limit = limit

    @property
    def clean(self) -> bool:
        return self.report.error_count == 0

    def add(self, line: int, column: str | None, reason: str) -> None:
        self.report.error_count += 1
        if len(self.report.errors) < self.limit:
            self.report.errors.append(RowIssue(line=line, column=column, reason=reason))

    def column(self, line: int, column: str | None, reason: str) -> None:
        """A problem with a column of the header (reported once, not per row)."""
        self.report.header_errors += 1
        self.add(line, column, reason)

    def reject(self, line: int, issues: list[tuple[str | None, str]]) -> None:
        """One bad row and everything wrong with it."""
        self.report.rejected += 1
        for column, reason in issues:
            self.add(line, column, reason)
