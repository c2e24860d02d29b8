"""
C{twistd numberok-tcp}: command-line options and the service tree.

No logic lives here: L{makeService} only builds the parts and wires them
(sources -> analytics -> publisher, journal, recent events -> connections),
each one a child service so that start and graceful stop follow twistd's
life cycle.  Children stop in reverse order of addition: admin, sources,
ingest port (no more reads), analytics (every active track becomes a Lost
event), recent events, journal (drains to disk), publisher and event port
(flush, then close), screenshots.  docs/operations.rst, "Shutdown".
"""

from __future__ import annotations

import os
import shutil
from typing import Optional

from twisted.application.service import MultiService
from twisted.python import usage

from numberok import settings as settingsModule
from numberok.analytics import Analytics, EventFanout
from numberok.publisher import EventPublisher
from numberok.screenshots import ScreenshotService
from numberok.journal import Journal
from numberok.server import EventPortService, NumberOkFactory
from numberok.sources.ingest import IngestFactory, IngestService
from numberok.web.recent import RecentEvents
from numberok.web.service import makeAdminService

DEFAULT_SETTINGS = os.path.join(os.path.dirname(__file__), "etc",
                                "numberok.ini")


def _positiveFloat(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise ValueError("must be greater than 0")
    return value


class Options(usage.Options):
    """The options of C{twistd numberok-tcp}."""

    synopsis = ("[--config PATH] [--port ENDPOINT] [--ingest ENDPOINT] "
                "[--admin ENDPOINT] [--demo] [--replay PATH]")

    optParameters = [
        ["config", "c", "numberok.ini",
         "Settings file (INI); created with the defaults when missing."],
        ["port", "p", None,
         "strports endpoint of the event server; overrides [NetServer] Port "
         "when given (default: tcp:<Port from the settings file>)."],
        ["ingest", "i", "tcp:7701:interface=127.0.0.1",
         "strports endpoint of the raw-read ingest (JSON lines); "
         "'none' to disable."],
        ["admin", "a", "tcp:8080:interface=127.0.0.1",
         "strports endpoint of the admin web page and API; 'none' to "
         "disable.  Refused off loopback while no password is set "
         "(numberok-passwd)."],
        ["journal", None, None,
         "Event journal folder (SQLite + screenshots); overrides [Journal] "
         "Path when given; 'none' disables the journal."],
        ["replay", None, None, "Play a JSONL file of reads."],
        ["replay-speed", None, "1",
         "Replay speed: 1 = as recorded, N = N times faster, max = as fast "
         "as the server takes the reads."],
        ["demo-rate", None, 1.0,
         "Demo: vehicles per second over all cameras.", _positiveFloat],
        ["demo-seed", None, 1, "Demo: random seed.", int],
        ["watch", None, None,
         "Take camera JPEG uploads (plate and time in the file name) from "
         "this folder."],
        ["watch-pattern", None, None,
         "File-name regex with the groups time, plate [, channel, zone] "
         "(default: <time>_<plate>[_<channel>[_<zone>]].jpg)."],
    ]
    optFlags = [
        ["demo", None, "Feed simulated vehicles (demo traffic); turns on "
                       "AttachScreenshotsToEvents for this run."],
        ["replay-loop", None, "Start the replay file again at its end."],
    ]

    def postOptions(self) -> None:
        path = self["config"]
        if not os.path.exists(path):
            try:
                shutil.copyfile(DEFAULT_SETTINGS, path)
            except OSError as e:
                raise usage.UsageError(
                    "cannot create settings file %s: %s" % (path, e))
        try:
            self.settings = settingsModule.load(path)
        except settingsModule.SettingsError as e:
            raise usage.UsageError("invalid settings:\n%s" % (e,))
        if self["demo"]:
            # The demo is there to be seen: its events carry their pictures
            # (for this run; the file is not changed).
            self.settings = self.settings.withChanges(
                {"NetServer.AttachScreenshotsToEvents": True})
        if self["replay"] and not os.path.isfile(self["replay"]):
            raise usage.UsageError("--replay: no such file: %s"
                                   % (self["replay"],))
        speed = self["replay-speed"]
        if speed == "max":
            self["replay-speed"] = None
        else:
            try:
                self["replay-speed"] = _positiveFloat(speed)
            except ValueError:
                raise usage.UsageError(
                    "--replay-speed: %r is not a number above 0 or 'max'"
                    % (speed,))
        if self["watch"] and not os.path.isdir(self["watch"]):
            raise usage.UsageError("--watch: no such folder: %s"
                                   % (self["watch"],))
        try:
            self.sources = _sources(self)
        except ValueError as e:
            raise usage.UsageError(str(e))
        if self["admin"] != "none":
            from numberok.web.auth import checkAdminEndpoint
            try:
                checkAdminEndpoint(self["admin"], self.settings)
            except ValueError as e:
                raise usage.UsageError(str(e))

    def journalPath(self) -> Optional[str]:
        """
        The journal folder: --journal, else [Journal] Path, a relative one
        being relative to the settings file's folder; L{None} for none.
        """
        path = self["journal"]
        if path is None:
            path = self.settings["Journal.Path"]
            if path:
                path = os.path.join(
                    os.path.dirname(os.path.abspath(self["config"])), path)
        if not path or path == "none":
            return None
        return path

    def eventEndpoint(self) -> str:
        """The event server's endpoint: --port, else the file's Port."""
        if self["port"]:
            return self["port"]
        return "tcp:%d" % (self.settings["NetServer.Port"],)


def makeService(options: Options) -> MultiService:
    """Build the whole server from parsed L{Options}."""
    settings = options.settings
    store = settingsModule.SettingsStore(settings,
                                         os.path.abspath(options["config"]))
    root = MultiService()

    screenshots = ScreenshotService()
    screenshots.setServiceParent(root)

    publisher = EventPublisher(store, screenshots)
    factory = NumberOkFactory(store, publisher)
    events = EventPortService(options.eventEndpoint(), factory,
                              enabled=settings["NetServer.Enable"])
    events.setName("events")
    events.setServiceParent(root)
    publisher.setServiceParent(root)

    sinks = [publisher]
    journal = None
    journalPath = options.journalPath()
    if journalPath is not None:
        journal = Journal(journalPath,
                          keepDays=settings["Journal.KeepDays"],
                          maxMegabytes=settings["Journal.MaxMegabytes"])
        journal.setName("journal")
        journal.setServiceParent(root)
        sinks.append(journal)

    recent = RecentEvents(journal=journal)
    recent.setServiceParent(root)
    sinks.append(recent)

    analytics = Analytics(store, EventFanout(*sinks))
    analytics.setServiceParent(root)

    if options["ingest"] != "none":
        IngestService(options["ingest"],
                      IngestFactory(analytics)).setServiceParent(root)

    for source in options.sources:
        source.sink = analytics
        source.setServiceParent(root)

    if options["admin"] != "none":
        makeAdminService(store, factory, events, analytics, recent,
                         endpoint=options["admin"],
                         journal=journal).setServiceParent(root)
    return root


def _sources(options: Options) -> list:
    """
    The read sources the options ask for, built (and so validated) while
    parsing the options, so a bad pattern or rate is a usage error; their
    sink is set when the service tree is built.
    """
    sources = []
    if options["demo"]:
        from numberok.sources.demo import DemoSource
        sources.append(DemoSource(None, rate=options["demo-rate"],
                                  seed=options["demo-seed"]))
    if options["replay"]:
        from numberok.sources.replay import ReplaySource
        sources.append(ReplaySource(None, options["replay"],
                                    speed=options["replay-speed"],
                                    loop=bool(options["replay-loop"])))
    if options["watch"]:
        from numberok.sources.watch import DEFAULT_PATTERN, FolderWatchSource
        sources.append(FolderWatchSource(
            None, options["watch"],
            pattern=options["watch-pattern"] or DEFAULT_PATTERN))
    return sources
