"""
C{twistd numberok-tcp}: command-line options, and L{makeService}, which hands
them to L{numberok.build.buildServer} -- the one place that wires the parts
and writes down the start and stop sequences.
"""

from __future__ import annotations

import os
from typing import Optional

from twisted.application.service import IService
from twisted.python import usage

from numberok import settings as settingsModule
from numberok.build import Endpoints, Maker, buildServer
from numberok.settings.store import Override
from numberok.settings.keys import (
    ADMIN_PASSWORD_HASH, JOURNAL_PATH, MQTT_BROKER,
    NETSERVER_ATTACH_SCREENSHOTS_TO_EVENTS, NETSERVER_PORT)


def _positiveFloat(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise ValueError("must be greater than 0")
    return value


class Options(usage.Options):
    """The options of C{twistd numberok-tcp}."""

    synopsis = ("[--config PATH] [--port ENDPOINT] [--ingest ENDPOINT] "
                "[--admin ENDPOINT] [--journal DIR|none] [--mqtt ENDPOINT] "
                "[--demo [--demo-rate N] [--demo-seed N]] "
                "[--replay PATH [--replay-speed N|max] [--replay-loop]] "
                "[--watch DIR [--watch-pattern REGEX]]")

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
        ["mqtt", None, None,
         "MQTT broker as a Twisted client endpoint "
         "(tcp:host=H:port=1883, tls:host=H:port=8883); overrides [Mqtt] "
         "Broker when given."],
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
                settingsModule.createDefaultFile(path)
            except FileExistsError:
                pass  # made by someone else meanwhile: load theirs
            except OSError as e:
                raise usage.UsageError(
                    "cannot create settings file %s: %s" % (path, e))
        try:
            self.settings = settingsModule.load(path)
        except settingsModule.SettingsError as e:
            # Not a UsageError: twistd would print its whole usage text
            # first and bury the one thing the operator must read.
            raise SystemExit("numberok: invalid settings:\n%s" % (e,))
        fileSettings = self.settings
        if self["mqtt"] is not None:
            try:
                self.settings = self.settings.withChanges(
                    {MQTT_BROKER: self["mqtt"]})
            except settingsModule.SettingsError as e:
                raise usage.UsageError("--mqtt: %s" % (e,))
        if self["demo"]:
            # The demo is there to be seen: its events carry their pictures
            # (for this run; the file is not changed).
            self.settings = self.settings.withChanges(
                {NETSERVER_ATTACH_SCREENSHOTS_TO_EVENTS: True})
        # What the options changed for this run, for the page to say.
        self.overrides = {
            key.name: Override(option, fileSettings[key])
            for key, option in ((MQTT_BROKER, "--mqtt"),
                                (NETSERVER_ATTACH_SCREENSHOTS_TO_EVENTS,
                                 "--demo"))
            if self.settings[key] != fileSettings[key]}
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
        self.sources = _sources(self)
        if self["admin"] != "none":
            from numberok.endpoints import isLoopbackEndpoint
            if not (self.settings[ADMIN_PASSWORD_HASH]
                    or isLoopbackEndpoint(self["admin"])):
                raise usage.UsageError(
                    "--admin %s is reachable from the network but no admin "
                    "password is set: set one with `numberok-passwd CONFIG` "
                    "first, or listen on loopback "
                    "(tcp:8080:interface=127.0.0.1)" % (self["admin"],))

    def journalPath(self) -> Optional[str]:
        """
        The journal folder: --journal, else [Journal] Path, a relative one
        being relative to the settings file's folder; L{None} for none.
        """
        path = self["journal"]
        if path is None:
            path = self.settings[JOURNAL_PATH]
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
        return "tcp:%d" % (self.settings[NETSERVER_PORT],)


def makeService(options: Options) -> IService:
    """Build the whole server from parsed L{Options}."""
    def endpoint(name: str) -> Optional[str]:
        value = options[name]
        return None if value == "none" else value
    server = buildServer(
        options.settings,
        Endpoints(events=options.eventEndpoint(), ingest=endpoint("ingest"),
                  admin=endpoint("admin")),
        settingsPath=os.path.abspath(options["config"]),
        journalPath=options.journalPath(),
        sources=options.sources)
    server.store.overrides.update(options.overrides)
    return server


def _sources(options: Options) -> list[Maker]:
    """
    Makers of the read sources the options ask for.  Their parameters are
    checked here, so a bad pattern is a usage error; the sources themselves
    are built by L{buildServer}, with the analytics (C{context.reads}) as
    their sink.
    """
    makers: list[Maker] = []
    if options["demo"]:
        from numberok.sources.demo import DemoSource
        rate, seed = options["demo-rate"], options["demo-seed"]
        makers.append(lambda context: DemoSource(
            context.reads, rate=rate, seed=seed, reactor=context.reactor,
            metrics=context.metrics))
    if options["replay"]:
        from numberok.sources.replay import ReplaySource
        path, speed = options["replay"], options["replay-speed"]
        loop = bool(options["replay-loop"])
        makers.append(lambda context: ReplaySource(
            context.reads, path, speed=speed, loop=loop,
            reactor=context.reactor, metrics=context.metrics))
    if options["watch"]:
        from numberok.sources.watch import (DEFAULT_PATTERN,
                                            FolderWatchSource, compilePattern)
        folder = options["watch"]
        try:
            pattern = compilePattern(options["watch-pattern"]
                                     or DEFAULT_PATTERN)
        except ValueError as e:
            raise usage.UsageError("--watch-pattern: %s" % (e,))
        makers.append(lambda context: FolderWatchSource(
            context.reads, folder, pattern=pattern, reactor=context.reactor,
            metrics=context.metrics))
    return makers
