"""Reading a CSV file as a stream of (line number, cells): encoding, dialect, line numbers.

The file is never read whole: a 64 KB sample decides the delimiter, then `csv.reader` runs
over a text stream of the file. Line numbers are physical lines of the file (header = 1), so
a record whose quoted field holds newlines is reported at the line where it starts.
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO

from tenure.kit.errors import InvalidInput

SAMPLE_BYTES = 64 * 1024
DELIMITERS = ",;\t|"
ENCODING = "utf-8-sig"  # UTF-8, with or without a byte order mark


class ImportFailed(InvalidInput):
    """The file as a whole cannot be read (encoding, no header, broken CSV)."""

    title = "Import failed"
    type_slug = "import-failed"


class _Dialect(csv.Dialect):
    delimiter = ","
    quotechar = '"'
    doublequote = True
    skipinitialspace = False
    lineterminator = "\r\n"
    quoting = csv.QUOTE_MINIMAL
    strict = False


def _not_utf8(line: int, offset: int) -> ImportFailed:
    return ImportFailed(
        f"line {line}: the file is not UTF-8 text (byte {offset + 1}); "
        "save it as UTF-8 (CSV UTF-8 in Excel) and try again"
    )


def _decode_sample(raw: bytes) -> str:
    decoder = codecs.getincrementaldecoder(ENCODING)()
    try:
        # final=False: a character cut at the end of the sample is not an error.
        return decoder.decode(raw, final=len(raw) < SAMPLE_BYTES)
    except UnicodeDecodeError as exc:
        raise _not_utf8(raw[: exc.start].count(b"\n") + 1, exc.start) from None


def _locate_bad_byte(stream: IO[bytes], start: int) -> ImportFailed:
    """Where the first byte that is not UTF-8 is (read again from the start: errors only)."""
    stream.seek(start)
    decoder = codecs.getincrementaldecoder(ENCODING)()
    offset, lines = 0, 1
    while block := stream.read(SAMPLE_BYTES):
        try:
            decoder.decode(block)
        except UnicodeDecodeError as exc:
            # The decoder may hold up to 3 bytes of a character begun in the previous block.
            at = max(exc.start - len(exc.object) + len(block), 0)
            return _not_utf8(lines + block[:at].count(b"\n"), offset + at)
        offset += len(block)
        lines += block.count(b"\n")
    return ImportFailed("the file is not UTF-8 text; save it as UTF-8 and try again")


def sniff_delimiter(sample: str, *, complete: bool) -> str:
    """The delimiter among `, ; tab |` (csv.Sniffer, checked against the header line)."""
    if not complete and "\n" in sample:
        sample = sample[: sample.rfind("\n")]  # drop the line the sample cut in two
    first = sample.lstrip("\r\n").splitlines()[0] if sample.strip() else ""
    try:
        guess: str | None = csv.Sniffer().sniff(sample, delimiters=DELIMITERS).delimiter
    except csv.Error:
        guess = None
    if guess is not None and guess in first:
        return guess
    # The Sniffer can be led astray by JSON cells; the header line is the better witness.
    counts = {d: first.count(d) for d in DELIMITERS}
    best = max(DELIMITERS, key=lambda d: counts[d])
    return best if counts[best] else ","


@dataclass
class CsvSource:
    header: list[str]
    header_line: int
    delimiter: str
    rows: Iterator[tuple[int, list[str]]]
    bytes_read: Callable[[], int]


def _rows(
    reader: Iterator[list[str]],
    position: Callable[[], int],
    undecodable: Callable[[], ImportFailed],
) -> Iterator[tuple[int, list[str]]]:
    """(first physical line of the record, cells), blank lines skipped."""
    line_num = position()
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except UnicodeDecodeError:
            raise undecodable() from None
        except csv.Error as exc:
            raise ImportFailed(f"line {line_num + 1}: unreadable CSV: {exc}") from None
        start, line_num = line_num + 1, position()
        if not cells or (len(cells) == 1 and not cells[0].strip()):
            continue
        yield start, cells


@contextmanager
def open_csv(stream: IO[bytes]) -> Iterator[CsvSource]:
    """A CSV source over a seekable binary stream (left open for the caller)."""
    start = stream.tell()
    raw = stream.read(SAMPLE_BYTES)
    sample = _decode_sample(raw)
    delimiter = sniff_delimiter(sample, complete=len(raw) < SAMPLE_BYTES)
    stream.seek(start)
    text = io.TextIOWrapper(stream, encoding=ENCODING, newline="")
    try:
        reader = csv.reader(text, _Dialect, delimiter=delimiter)
        rows = _rows(reader, lambda: reader.line_num, lambda: _locate_bad_byte(stream, start))
        first = next(rows, None)
        if first is None:
            raise ImportFailed("the file is empty: it needs a header line and rows")
        yield CsvSource(
            header=first[1],
            header_line=first[0],
            delimiter=delimiter,
            rows=rows,
            bytes_read=stream.tell,
        )
    finally:
        text.detach()  # the caller owns the binary stream
