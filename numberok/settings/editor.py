"""
The comment-keeping INI editor: rewrite some values of an INI text in
place, add keys and sections, remove sections, and leave every other byte
as the user wrote it -- comments (full-line and after a value, in their
column), blank lines, unknown sections, the order, C{\\r\\n} endings.

It works on lines and knows nothing of the settings schema; what to write
is decided by L{numberok.settings.files}, which also reads the result
back to prove the edit means what was intended.  (Why not
C{configupdater}: see the package docstring.)
"""

from __future__ import annotations

import re
from typing import Iterable, Mapping, Optional

_KEY_LINE = re.compile(r"^(\s*)([^=:]*?)(\s*[=:][ \t]?)(.*?)(\s*)$")
_SECTION_LINE = re.compile(r"^\[(.+)\]$")
_INLINE_COMMENT = re.compile(r"(?<=\s)[;#]")
_COMMENT_PREFIXES = (";", "#")


def editText(text: str, edits: Mapping[str, Mapping[str, str]],
             removed: Iterable[str] = ()) -> str:
    """
    C{text} with C{edits} applied.

    @param edits: section to C{{key: value text}}.  A key found in its
        section is rewritten in place (keeping its comment); a key not
        found is added after the section's last key; a section not found
        is appended at the end (an empty mapping appends just the header).
    @param removed: sections to remove, header, keys and comments between
        them; the comments after its last key stay (they usually introduce
        what follows).
    """
    pending = {section: dict(keys) for section, keys in edits.items()}
    removed = set(removed)
    lines = text.splitlines(keepends=True)
    ending = _lineEnding(lines)
    if lines and not lines[-1].endswith(("\n", "\r")):
        lines[-1] += ending
    headers = [i for i, line in enumerate(lines)
               if _sectionName(line) is not None]
    bounds = headers + [len(lines)]
    out = lines[:bounds[0]]
    for i, start in enumerate(headers):
        name = _sectionName(lines[start])
        out += _editSection(lines[start:bounds[i + 1]],
                            pending.pop(name, {}), name in removed, ending)
    for section, keys in pending.items():
        if out and out[-1].strip():
            out.append(ending)
        out.append("[%s]%s" % (section, ending))
        out += ["%s = %s%s" % (key, value, ending)
                for key, value in keys.items()]
    return "".join(out)


def _lineEnding(lines: list[str]) -> str:
    """The file's own line ending, for the lines this editor adds."""
    for line in lines:
        if line.endswith("\r\n"):
            return "\r\n"
        if line.endswith("\n"):
            return "\n"
    return "\n"


def _splitEnding(line: str) -> tuple[str, str]:
    body = line.rstrip("\r\n")
    return body, line[len(body):]


def _sectionName(line: str) -> Optional[str]:
    body = _splitEnding(line)[0]
    comment = _INLINE_COMMENT.search(body)
    if comment:
        body = body[:comment.start()]
    match = _SECTION_LINE.match(body.strip())
    return match.group(1) if match else None


def _isNothing(line: str) -> bool:
    """A blank or full-line comment line."""
    stripped = line.strip()
    return not stripped or stripped.startswith(_COMMENT_PREFIXES)


def _rewriteValue(line: str, value: str) -> str:
    """C{line} (a C{Key = value ; comment} line) with C{value} in place,
    keeping indentation, spacing and the comment's column where it can."""
    body, ending = _splitEnding(line)
    comment = _INLINE_COMMENT.search(body)
    tail = ""
    if comment:
        body, tail = body[:comment.start()], body[comment.start():]
    indent, key, delimiter, old, space = _KEY_LINE.match(body).groups()
    if tail:
        space = " " * max(1, len(old) + len(space) - len(value))
    else:
        space = ""
    return indent + key + delimiter + value + space + tail + ending


def _editSection(lines: list[str], keys: dict[str, str], remove: bool,
                 ending: str) -> list[str]:
    """
    One section's lines (its header first) with C{keys} rewritten or
    added after its last key; or, when C{remove}, without the section.
    """
    if remove:
        last = max([i for i, line in enumerate(lines) if not _isNothing(line)],
                   default=0)
        return lines[last + 1:]
    out = [lines[0]]
    insertAt = 1
    keyIndent: Optional[int] = None
    dropping = False
    for line in lines[1:]:
        if not line.strip():
            keyIndent = None
            out.append(line)
            continue
        if _isNothing(line):
            out.append(line)
            continue
        indent = len(line) - len(line.lstrip())
        if keyIndent is not None and indent > keyIndent:
            # A continuation line of the key above.
            if not dropping:
                out.append(line)
                insertAt = len(out)
            continue
        keyIndent, dropping = indent, False
        body = _splitEnding(line)[0]
        comment = _INLINE_COMMENT.search(body)
        match = _KEY_LINE.match(body[:comment.start()] if comment else body)
        key = match.group(2).strip() if match else None
        if key in keys:
            out.append(_rewriteValue(line, keys.pop(key)))
            dropping = True
        else:
            out.append(line)
        insertAt = len(out)
    out[insertAt:insertAt] = ["%s = %s%s" % (key, value, ending)
                              for key, value in keys.items()]
    return out
