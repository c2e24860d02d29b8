"""
CSV import and export of a list's entries.

Import reads UTF-8 with or without a byte-order mark, separated by C{;} or
C{,} (whichever the header line uses), with a header line naming the
columns (C{plate} is required; the others are C{owner}, C{comment},
C{validFrom}, C{validUntil}, C{windows} -- several separated by C{|} --
and C{visitsLeft}).  Every line is checked and every bad line reported
with its number; a file with any error imports nothing.

Export writes the same columns, C{;}-separated, UTF-8 with a byte-order
mark (so a spreadsheet opens Cyrillic owners correctly), and reads back
unchanged.
"""

from __future__ import annotations

import csv
import io
from datetime import tzinfo
from time import sleep
from typing import Iterable, Iterator

from numberok.lists.index import YIELD_EVERY
from numberok.lists.model import Entry, ListError, parseEntry

COLUMNS = ("plate", "owner", "comment", "validFrom", "validUntil",
           "windows", "visitsLeft")
MAX_LINE_ERRORS = 100
"""Bad lines reported one by one; past this the answer says how many
more."""


def _lines(text: str) -> Iterator[str]:
    """C{text}'s lines with their endings, one at a time (a StringIO would
    hold a four-byte-per-character copy of a whole 100,000-line file)."""
    start, size = 0, len(text)
    while start < size:
        end = text.find("\n", start)
        if end < 0:
            yield text[start:]
            return
        yield text[start:end + 1]
        start = end + 1


def parseCSV(body: bytes, zone: tzinfo, now: float) -> list[Entry]:
    """
    The entries of a CSV file.

    @raise ListError: C{{"line N": "..."}} for each bad line (the first
        L{MAX_LINE_ERRORS}), or C{{"body": ...}} for a file that is not
        CSV at all; nothing is returned then.
    """
    return list(readCSV(body, zone, now))


def readCSV(body: bytes, zone: tzinfo, now: float) -> Iterator[Entry]:
    """
    The entries of a CSV file one by one, for an import that stores them
    as they come (100,000 entries are never all held as values at once).
    The caller must undo what it did with them when this raises: a bad
    line is known only once it is reached, and the errors of the whole
    file are raised at its end (L{ListError}, as L{parseCSV}).
    """
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise ListError({"body": "not UTF-8 (byte %d); save the file as "
                                 "UTF-8" % (e.start,)})
    first = text.split("\n", 1)[0]
    if not first.strip():
        raise ListError({"line 1": "the header line is missing (%s)"
                                   % (";".join(COLUMNS),)})
    delimiter = ";" if first.count(";") >= first.count(",") else ","
    reader = csv.reader(_lines(text), delimiter=delimiter)
    errors: dict[str, str] = {}
    try:
        header = [h.strip() for h in next(reader)]
    except csv.Error as e:
        raise ListError({"line 1": str(e)})
    unknown = [h for h in header if h not in COLUMNS]
    if unknown or "plate" not in header or len(set(header)) != len(header):
        raise ListError({"line 1": (
            "header must name the columns %s (plate required, each once); "
            "got %s" % (delimiter.join(COLUMNS), delimiter.join(header)))})
    seen: dict[str, int] = {}
    bad = 0
    try:
        for values in reader:
            line = reader.line_num
            if line % YIELD_EVERY == 0:
                sleep(0)
            if not any(v.strip() for v in values):
                continue
            problem = None
            if len(values) != len(header):
                problem = "%d fields, the header has %d" % (len(values),
                                                             len(header))
            else:
                try:
                    entry = parseEntry(dict(zip(header, values)), zone, now)
                except ListError as e:
                    problem = "; ".join("%s: %s" % kv
                                        for kv in e.errors.items())
                else:
                    if entry.plate in seen:
                        problem = "plate %s is already on line %d" % (
                            entry.plate, seen[entry.plate])
                    else:
                        seen[entry.plate] = line
                        yield entry
            if problem is not None:
                bad += 1
                if bad <= MAX_LINE_ERRORS:
                    errors["line %d" % (line,)] = problem
    except csv.Error as e:
        bad += 1
        errors["line %d" % (reader.line_num,)] = str(e)
    if bad > MAX_LINE_ERRORS:
        errors["more"] = "%d more bad lines" % (bad - MAX_LINE_ERRORS,)
    if errors:
        raise ListError(errors)


def exportCSV(entries: Iterable[Entry]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
    writer.writerow(COLUMNS)
    for e in entries:
        writer.writerow([e.plate, e.owner, e.comment, e.validFrom or "",
                         e.validUntil or "",
                         "|".join(w.text for w in e.windows),
                         "" if e.visitsLeft is None else e.visitsLeft])
    return out.getvalue().encode("utf-8-sig")
