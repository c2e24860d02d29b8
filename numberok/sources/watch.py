"""
Folder watch: many ANPR cameras upload one JPEG per recognition over FTP,
with the plate and the time in the file name.  L{FolderWatchSource} polls
such a folder, turns each finished file into a read with its image, and
moves it to C{done/} (or C{bad/} when its name or content is unusable).

Listing, reading and moving happen in a thread; the reactor only decides
when to poll and hands the reads to the sink.  The exact delivery
guarantee and the name pattern are documented in docs/sources.rst.
"""

from __future__ import annotations

import datetime
import math
import os
import re
from dataclasses import replace
from typing import Callable, Optional, Pattern, Union

from twisted.internet.defer import Deferred
from twisted.internet.task import LoopingCall
from twisted.logger import Logger

from numberok.events import PlateRead
from numberok.images import isJpeg
from numberok.metrics import Metrics
from numberok.sources import ThreadedSource, handOver
from numberok.sources.formats import (
    MAX_CHANNEL, MAX_JPEG_BYTES, MAX_TIME_MS, MAX_ZONE, ReadFormatError,
    checkPlate)

# <time>_<plate>[_<channel>[_<zone>]].jpg, time as YYYYmmddHHMMSS[fff] or
# epoch seconds / milliseconds.
DEFAULT_PATTERN = (r"(?P<time>\d{10,17})_(?P<plate>[^_]+?)"
                   r"(?:_(?P<channel>\d{1,4})(?:_(?P<zone>\d))?)?"
                   r"\.(?i:jpe?g)")

# Plate texts cameras write when they saw a vehicle but no plate.
NO_PLATE = frozenset({"unknown", "noplate", "none", "null", "-", "nan"})


class BadFileError(ValueError):
    """
    A file that cannot become a read, by its name or its content; the
    message says why.
    """


def parseTime(text: str, tz: Optional[datetime.tzinfo]) -> int:
    """
    The time in a file name, as ms since the epoch.  Non-digits are
    dropped first, so a pattern may capture C{2025-11-24_15-30-12}.

    By the number of digits: 10 epoch seconds, 13 epoch milliseconds,
    14 C{YYYYmmddHHMMSS}, 17 C{YYYYmmddHHMMSSfff}, the latter two in C{tz}
    (L{None}: the server's local time zone, as cameras usually stamp).

    @raise BadFileError: any other length, or not a real date.
    """
    digits = re.sub(r"\D", "", text)
    if len(digits) == 10:
        ms = int(digits) * 1000
    elif len(digits) == 13:
        ms = int(digits)
    elif len(digits) in (14, 17):
        try:
            stamp = datetime.datetime(
                int(digits[0:4]), int(digits[4:6]), int(digits[6:8]),
                int(digits[8:10]), int(digits[10:12]), int(digits[12:14]),
                int(digits[14:17] or 0) * 1000, tzinfo=tz)
            ms = round(stamp.timestamp() * 1000)
        except (ValueError, OverflowError, OSError) as e:
            raise BadFileError("time %s is not a valid date: %s" % (text, e))
    else:
        raise BadFileError(
            "time %s has %d digits; expected 14 (YYYYmmddHHMMSS), 17 "
            "(with milliseconds), 13 (epoch ms) or 10 (epoch s)"
            % (text, len(digits)))
    if not 0 <= ms <= MAX_TIME_MS:
        raise BadFileError("time %s is out of range" % (text,))
    return ms


def _index(groups: dict, name: str, high: int) -> int:
    text = groups.get(name)
    if text is None or text == "":
        return 0
    if not (text.isascii() and text.isdigit()) or int(text) > high:
        raise BadFileError("%s %s is not 0..%d" % (name, text, high))
    return int(text)


def compilePattern(pattern: Union[str, Pattern[str]]) -> Pattern[str]:
    """
    A file-name pattern checked for use: a regular expression with the
    named groups C{time} and C{plate}.

    @raise ValueError: with a message for the command line.
    """
    if isinstance(pattern, str):
        try:
            pattern = re.compile(pattern)
        except re.error as e:
            raise ValueError("watch pattern is not a regular expression: "
                             "%s" % (e,))
    missing = {"time", "plate"} - set(pattern.groupindex)
    if missing:
        raise ValueError("watch pattern needs the named groups time and "
                         "plate, e.g. (?P<plate>...); missing: %s"
                         % (", ".join(sorted(missing)),))
    return pattern


def parseName(pattern: Pattern[str], name: str,
              tz: Optional[datetime.tzinfo]) -> PlateRead:
    """
    The read a file name describes, without its image.

    @raise BadFileError: the name does not match C{pattern} (in full) or a
        field in it is invalid.
    """
    match = pattern.fullmatch(name)
    if match is None:
        raise BadFileError("name does not match the pattern")
    groups = match.groupdict()
    raw = groups.get("plate") or ""
    if raw.strip().lower() in NO_PLATE:
        raise BadFileError("no plate in the name (%s)" % (raw,))
    try:
        plate = checkPlate(raw, "plate")
    except ReadFormatError as e:
        raise BadFileError(str(e))
    return PlateRead(
        plate=plate, timeMs=parseTime(groups.get("time") or "", tz),
        channel=_index(groups, "channel", MAX_CHANNEL),
        zone=_index(groups, "zone", MAX_ZONE), source="watch",
        perVehicle=True)


def moveUnique(path: str, directory: str, name: str) -> str:
    """
    Rename C{path} into C{directory} under C{name}, or C{name-1},
    C{name-2}, ... (before the extension) when taken: never overwrite.
    One atomic rename within one file system; only this service writes
    there, so checking first is safe.

    @return: the name it got.
    """
    os.makedirs(directory, exist_ok=True)
    base, ext = os.path.splitext(name)
    candidate, n = name, 0
    while True:
        target = os.path.join(directory, candidate)
        if not os.path.lexists(target):
            try:
                os.rename(path, target)
                return candidate
            except FileExistsError:     # Windows refuses to replace
                pass
        n += 1
        candidate = "%s-%d%s" % (base, n, ext)


class FolderWatchSource(ThreadedSource):
    """
    Polls a folder of camera uploads and feeds one read per JPEG.

    A file is taken when it was already there, with the same size and
    modification time, at the previous poll, and its modification time is
    not within the last poll interval (a future time, from a skewed clock,
    counts on the two polls alone).  Hidden files and names ending in
    L{ignoreSuffixes} -- uploads in progress -- are never touched.

    Each taken file is read, then renamed into C{done/}, and only then is
    its read handed to the sink; a file that fails is renamed into
    C{bad/} with a log line saying why, and counted in
    C{numberok_read_errors_total{source="watch"}}.  See docs/sources.rst for
    what that guarantees across a restart.
    """

    workerName = "numberok-watch"
    log = Logger()
    doneName = "done"
    badName = "bad"
    maxFileBytes = MAX_JPEG_BYTES
    maxFilesPerPoll = 200
    ignoreSuffixes = (".tmp", ".part", ".partial", ".filepart", ".upload",
                      ".crdownload", ".!ut")

    def __init__(self, sink, directory: str,
                 pattern: Union[str, Pattern[str]] = DEFAULT_PATTERN,
                 pollInterval: float = 1.0, reactor=None,
                 tz: Optional[datetime.tzinfo] = None,
                 runInThread: Optional[Callable[..., Deferred]] = None,
                 metrics: Optional[Metrics] = None):
        """
        @param sink: an L{numberok.interfaces.IPlateReadSink}.
        @param directory: the folder the cameras upload into.
        @param pattern: a regular expression matched against the whole
            file name, with named groups C{time} and C{plate} and optional
            C{channel} and C{zone}.
        @param pollInterval: seconds between polls, and the age a file
            must reach before it is taken.
        @param tz: the time zone of C{YYYYmmddHHMMSS} names; L{None} is the
            server's local zone.
        @param runInThread: C{f(callable, *args) -> Deferred} running the
            folder work off the reactor thread; by default a one-thread
            pool this service owns.  Tests pass a synchronous one.
        @param metrics: the server's L{Metrics}; a private one by default.
        @raise ValueError: a bad pattern or interval, with a message for
            the command line.
        """
        pattern = compilePattern(pattern)
        if not (isinstance(pollInterval, (int, float))
                and math.isfinite(pollInterval) and 0 < pollInterval <= 3600):
            raise ValueError("watch poll interval must be 0..3600 seconds, "
                             "got %r" % (pollInterval,))
        ThreadedSource.__init__(self, reactor, runInThread, metrics)
        self._badFiles = self.metrics.readErrors.labels(source="watch")
        self.sink = sink
        self.directory = directory
        self.pattern = pattern
        self.pollInterval = pollInterval
        self.tz = tz
        self._loop: Optional[LoopingCall] = None
        self._loopDone: Optional[Deferred] = None
        self._seen: dict[str, tuple[int, int]] = {}
        self._complaints: dict[str, str] = {}

    def startService(self) -> None:
        super().startService()
        self._run = self._startWorker()
        # Nothing is known about files from before: each waits a poll.
        self._seen = {}
        self.log.info("watching {directory} every {interval} s",
                      directory=self.directory, interval=self.pollInterval)
        self._loop = LoopingCall(self._poll)
        self._loop.clock = self.reactor
        # A poll returns a Deferred: the next one waits for it to finish.
        self._loopDone = self._loop.start(self.pollInterval, now=True)

    def stopService(self) -> Deferred:
        """
        Stop polling.  A poll in progress finishes first, and the reads of
        the files it already moved to C{done/} still reach the sink; the
        Deferred fires once the worker thread is gone.
        """
        super().stopService()
        loop, self._loop = self._loop, None
        if loop is not None and loop.running:
            loop.stop()
        done, self._loopDone = self._loopDone, None
        if done is None:
            return self._stopWorker()
        return done.addCallback(lambda _: self._stopWorker())

    def _poll(self) -> Deferred:
        d = self._run(self._scan, self.reactor.seconds())
        d.addCallback(self._deliver)
        # Never fails: a failed Deferred would end the LoopingCall.
        d.addErrback(lambda f: self.log.failure(
            "polling {directory} failed", f, directory=self.directory))
        return d

    def _ignored(self, name: str) -> bool:
        return name.startswith(".") or name.lower().endswith(
            self.ignoreSuffixes)

    def _scan(self, nowSeconds: float) -> list[tuple]:
        """
        One poll, in the thread: list, pick the stable files, take them.

        @return: results for the reactor: C{("accepted", read, doneName)},
            C{("bad", name, reason, badName)}, C{("error", name, message)}
            or C{("folder", message)}.
        """
        try:
            with os.scandir(self.directory) as listing:
                entries = sorted(listing, key=lambda e: e.name)
        except OSError as e:
            self._seen = {}
            return [("folder", "%s: %s" % (e.strerror or e, self.directory))]
        results: list[tuple] = [("folder", "")]
        current: dict[str, tuple[int, int]] = {}
        taken = 0
        for entry in entries:
            name = entry.name
            if self._ignored(name):
                continue
            try:
                if not entry.is_file(follow_symlinks=False):
                    continue
                stat = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            signature = (stat.st_size, stat.st_mtime_ns)
            current[name] = signature
            if self._seen.get(name) != signature:
                continue
            age = nowSeconds - stat.st_mtime_ns / 1e9
            if 0 <= age < self.pollInterval:
                continue
            if taken >= self.maxFilesPerPoll:
                continue
            taken += 1
            results.append(self._take(entry.path, name))
        self._seen = current
        return results

    def _take(self, path: str, name: str) -> tuple:
        """Read, check and move one stable file (in the thread)."""
        try:
            read = parseName(self.pattern, name, self.tz)
            with open(path, "rb") as f:
                data = f.read(self.maxFileBytes + 1)
            if len(data) > self.maxFileBytes:
                raise BadFileError("larger than %d bytes"
                                   % (self.maxFileBytes,))
            if not isJpeg(data):
                raise BadFileError("not a JPEG (%d bytes without the FF D8 "
                                   "start-of-image marker)" % (len(data),))
        except BadFileError as e:
            return self._move(path, name, self.badName, ("bad", name, str(e)))
        except OSError as e:
            return ("error", name, "cannot read: %s" % (e.strerror or e,))
        return self._move(path, name, self.doneName,
                          ("accepted", replace(read, jpeg=data)))

    def _move(self, path: str, name: str, where: str, result: tuple) -> tuple:
        try:
            moved = moveUnique(path, os.path.join(self.directory, where), name)
        except OSError as e:
            return ("error", name, "cannot move to %s/: %s"
                    % (where, e.strerror or e))
        return result + (moved,)

    def _deliver(self, results: list[tuple]) -> None:
        failing = {result[1] for result in results if result[0] == "error"}
        for name in [n for n in self._complaints if n and n not in failing]:
            del self._complaints[name]
        for result in results:
            kind = result[0]
            if kind == "accepted":
                _, read, moved = result
                handOver(self.sink, read, self.directory)
            elif kind == "bad":
                _, name, reason, moved = result
                self._badFiles.inc()
                self.log.warn("{directory}: {name} moved to {where}/{moved}: "
                              "{reason}", directory=self.directory, name=name,
                              where=self.badName, moved=moved, reason=reason)
            elif kind == "error":
                _, name, message = result
                self._complain(name, message)
            else:
                self._complain("", result[1])

    def _complain(self, name: str, message: str) -> None:
        """Log a lasting problem once, not on every poll."""
        if not message:
            if self._complaints.pop(name, None):
                self.log.info("watch folder {directory} is readable again",
                              directory=self.directory)
            return
        if self._complaints.get(name) == message:
            return
        self._complaints[name] = message
        if name:
            self.log.warn("{directory}: {name}: {message}; left in place",
                          directory=self.directory, name=name,
                          message=message)
        else:
            self.log.error("watch folder unusable: {message}",
                           message=message)
