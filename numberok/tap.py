"""
C{twistd numberok-tcp}: command-line options and the service tree.

No logic lives here: L{makeService} only builds the parts and wires them
(sources -> analytics -> publisher -> connections), each one a child
service so that start and graceful stop follow twistd's life cycle.
Children stop in reverse order: sources first, then the analytics (which
turn every active track into a Lost event), then the publisher and the
listening ports.
"""

from __future__ import annotations

import os
import shutil

from twisted.application.service import MultiService
from twisted.python import usage

from numberok import settings as settingsModule
from numberok.analytics import Analytics, EventFanout
from numberok.publisher import EventPublisher
from numberok.screenshots import ScreenshotService
from numberok.server import ListeningService, NumberOkFactory
from numberok.sources.ingest import IngestFactory

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
         "disable."],
        ["replay", None, None, "Play a JSONL file of reads."],
        ["replay-speed", None, 1.0,
         "Replay speed: 1 = as recorded, N = N times faster.",
         _positiveFloat],
        ["demo-rate", None, 0.5,
         "Demo: vehicles per second over all cameras.", _positiveFloat],
        ["demo-seed", None, 1, "Demo: random seed.", int],
    ]
    optFlags = [
        ["demo", None, "Feed simulated vehicles (demo traffic)."],
        ["replay-fast", None,
         "Replay as fast as the server takes the reads."],
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
        if self["replay"] and not os.path.isfile(self["replay"]):
            raise usage.UsageError("--replay: no such file: %s"
                                   % (self["replay"],))

    def eventEndpoint(self) -> str:
        """The event server's endpoint: --port, else the file's Port."""
        if self["port"]:
            return self["port"]
        return "tcp:%d" % (self.settings["NetServer.Port"],)


def makeService(options: Options) -> MultiService:
    """Build the whole server from parsed L{Options}."""
    store = settingsModule.SettingsStore(options.settings,
                                         os.path.abspath(options["config"]))
    root = MultiService()

    screenshots = ScreenshotService()
    screenshots.setServiceParent(root)

    publisher = EventPublisher(store, screenshots)
    factory = NumberOkFactory(store, publisher)
    events = ListeningService(options.eventEndpoint(), factory,
                              enabled=options.settings["NetServer.Enable"])
    events.setName("events")
    events.setServiceParent(root)
    publisher.setServiceParent(root)

    analytics = Analytics(store, EventFanout(publisher))
    analytics.setServiceParent(root)

    if options["ingest"] != "none":
        ListeningService(options["ingest"],
                         IngestFactory(analytics)).setServiceParent(root)

    for source in _sources(options, analytics):
        source.setServiceParent(root)
    return root


def _sources(options: Options, sink) -> list:
    sources = []
    if options["demo"]:
        from numberok.sources.demo import DemoSource
        sources.append(DemoSource(sink, rate=options["demo-rate"],
                                  seed=options["demo-seed"]))
    if options["replay"]:
        from numberok.sources.replay import ReplaySource
        speed = None if options["replay-fast"] else options["replay-speed"]
        sources.append(ReplaySource(sink, options["replay"], speed=speed,
                                    loop=bool(options["replay-loop"])))
    return sources
