"""
The journal's picture files and what a failed write means.

Pictures live in C{screenshots/} under names made fresh for each write
(C{<random>.jpg}, C{<random>.plate.jpg}) and are written I{before} the row
that names them commits: a file no row names is an orphan, removed at the
next start, and a row never points at a file written for another event,
whatever failed in between: with reused names, a full disk that stopped
a row after its picture was written made a later event serve that
vehicle's picture.

Blocking: everything here runs in a thread.
"""

from __future__ import annotations

import errno
import io
import os
import sqlite3
import uuid
from typing import Optional

THUMBNAIL_SIZE = (192, 144)
THUMBNAIL_QUALITY = 70

_DISK_FULL = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}


def makeThumbnail(jpeg: bytes, size: tuple[int, int] = THUMBNAIL_SIZE,
                  quality: int = THUMBNAIL_QUALITY) -> Optional[bytes]:
    """
    A JPEG of C{jpeg} scaled down to fit C{size}, or L{None} when it is not
    a usable image.  C{draft} lets the decoder skip most of a large frame's
    pixels.
    """
    from PIL import Image

    from numberok.images import frameSize
    try:
        frameSize(jpeg)  # the pixel limit, from the header
        with Image.open(io.BytesIO(jpeg), formats=("JPEG",)) as image:
            image.draft("RGB", size)
            image = image.convert("RGB")
            image.thumbnail(size)
            out = io.BytesIO()
            image.save(out, "JPEG", quality=quality)
            return out.getvalue()
    except Exception:  # InvalidImage, or anything Pillow raises
        return None


def newPictureName() -> str:
    """A file name no other write ever used (128 random bits)."""
    return uuid.uuid4().hex


def writeNew(path: str, data: bytes) -> None:
    """
    Write C{data} to a file that must not exist yet; on any failure the
    partial file is removed before the error goes on.
    """
    try:
        with open(path, "xb") as f:
            f.write(data)
    except BaseException:
        removeQuietly(path)
        raise


def removeQuietly(path: str) -> None:
    try:
        os.remove(path)
    except OSError:
        pass


def readOrNone(path: str) -> Optional[bytes]:
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        return None


def failureReason(error: BaseException) -> str:
    """
    The metric label of a failed write: C{disk_full}, C{read_only} or
    C{other}, from an C{OSError}'s errno or SQLite's own error code.
    """
    if isinstance(error, OSError):
        if error.errno in _DISK_FULL:
            return "disk_full"
        if error.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
            return "read_only"
    if isinstance(error, sqlite3.Error):
        code = getattr(error, "sqlite_errorcode", None)
        if code is not None:
            code &= 0xFF  # the primary code of an extended one
        if code == sqlite3.SQLITE_FULL:
            return "disk_full"
        if code in (sqlite3.SQLITE_READONLY, sqlite3.SQLITE_PERM,
                    sqlite3.SQLITE_CANTOPEN):
            return "read_only"
    return "other"


_WORDS = {"disk_full": "disk full", "read_only": "read-only"}


def describe(error: BaseException) -> str:
    """
    C{error} for an operator's log line: "disk full" or "read-only" first,
    in words, then the system's own text.
    """
    reason = failureReason(error)
    text = str(error) or type(error).__name__
    if reason in _WORDS:
        return "%s (%s)" % (_WORDS[reason], text)
    return text
