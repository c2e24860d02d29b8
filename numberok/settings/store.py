"""
L{SettingsStore}: the current settings of a running server, who wants to
hear of changes, and how a change reaches the settings file.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping, Optional

from twisted.logger import Logger

from numberok.settings.files import saveFile
from numberok.settings.values import Key, Settings

Observer = Callable[[Settings, Settings], None]


@dataclass(frozen=True, slots=True)
class Override:
    """
    A setting a command-line option changed for this run only.

    @ivar option: the option, as typed (C{"--demo"}).
    @ivar fileValue: the value the settings file holds.
    """

    option: str
    fileValue: Any


class SettingsStore:
    """
    The current settings of a running server and who wants to hear of
    changes.  Parts receive the store, read C{current} when they need a
    value, and register an observer when they must act on a change (rebind
    a port, restart a timer).

    A change from outside (the admin API) takes three steps, so that each
    failure says whose fault it is:

     1. C{new = store.current.withChanges(changes)} -- L{SettingsError}
        names only keys of C{changes} (the request's fault).
     2. C{store.writeFile(new)}, blocking, in a thread --
        L{SettingsFileInvalid} when the file on disk was made invalid by
        hand (it names the file and its bad keys; the request was fine),
        L{SettingsFileError} when it cannot be read or written.  Nothing
        is written then.
     3. C{store.replace(new)} in the reactor thread: observers run.

    L{apply} does all three, for callers that may block.

    @ivar path: the settings file, or L{None} for settings kept in memory.
    @ivar overrides: C{"Section.Key"} to L{Override}, for the values a
        command-line option set for this run over the file's (the page
        says so); a key leaves once a save writes it into the file.
    """

    log = Logger()

    def __init__(self, settings: Optional[Settings] = None,
                 path: Optional[str] = None) -> None:
        self.current = settings or Settings()
        self.path = path
        self.overrides: dict[str, Override] = {}
        self._observers: list[Observer] = []

    def addObserver(self, observer: Observer) -> None:
        """Call C{observer(old, new)} after every change."""
        self._observers.append(observer)

    def removeObserver(self, observer: Observer) -> None:
        if observer in self._observers:
            self._observers.remove(observer)

    def replace(self, settings: Settings) -> None:
        """
        Make C{settings} current and tell every observer.  An observer that
        raises is logged and does not stop the others.
        """
        old, self.current = self.current, settings
        for observer in list(self._observers):
            try:
                observer(old, settings)
            except Exception:
                self.log.failure("settings observer {observer!r} failed",
                                 observer=observer)

    def update(self, changes: Mapping[Key, Any]) -> Settings:
        """
        Validate and apply C{changes} in memory only (see
        L{Settings.withChanges}).

        @raise SettingsError: nothing changes.
        """
        settings = self.current.withChanges(changes)
        self.replace(settings)
        return settings

    def writeFile(self, new: Settings) -> None:
        """
        Save C{new} into the settings file (when there is one), merged with
        the file as it is on disk now, without making it current: every
        value the server holds survives, also when the file was emptied
        or deleted (see L{numberok.settings.files}).  Blocking: a running
        server calls it in a thread.

        @raise SettingsFileInvalid: the file on disk is invalid.
        @raise SettingsFileError: it cannot be read or written.
        """
        if self.path is not None:
            saveFile(self.path, self.current, new)
            for name in [n for n in self.overrides
                         if self.current[n] != new[n]]:
                del self.overrides[name]

    def apply(self, changes: Mapping[Key, Any]) -> Settings:
        """
        Validate C{changes}, save them (L{writeFile}) and make them current.
        Blocking.

        @raise SettingsError: an invalid change (keys of C{changes} only),
            or, as its subclasses, a file that is invalid or unusable.
            Nothing changed.
        """
        new = self.current.withChanges(changes)
        self.writeFile(new)
        self.replace(new)
        return new
