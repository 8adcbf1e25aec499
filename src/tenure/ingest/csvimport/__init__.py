"""CSV import of accounts, contacts, subscriptions, events, support interactions and surveys.

`import_csv(session, kind, stream, ...)` streams the file (never loaded whole), maps its
header by aliases, validates every row with the domain's schema, writes in chunks through
the domain's services, and returns an `ImportReport` of counts and bad rows (line, column,
reason). All or nothing by default; `partial=True` keeps the good rows.
"""

from tenure.ingest.csvimport.columns import KINDS, SPECS, Kind
from tenure.ingest.csvimport.reader import ImportFailed
from tenure.ingest.csvimport.report import ImportRejected, ImportReport, RowIssue
from tenure.ingest.csvimport.run import import_csv, import_path

__all__ = [
    "KINDS",
    "SPECS",
    "ImportFailed",
    "ImportRejected",
    "ImportReport",
    "Kind",
    "RowIssue",
    "import_csv",
    "import_path",
]
