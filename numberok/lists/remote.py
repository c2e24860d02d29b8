"""
The lists of a central office as a site holds them (L{CentralLists}, a part
of L{numberok.lists.ListsService}): the message a central office sends for
a list (L{CentralLists.snapshot}) and a site's taking of it
(L{CentralLists.applyRemote}), versioned, whole, in the lists' thread.
L{numberok.lists.share} carries the messages over the broker.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from numberok.lists.index import ListIndex
from numberok.lists.model import ListError, parseEntry, parseList

if TYPE_CHECKING:
    from numberok.lists.store import ListsStore


def release(held: list) -> None:
    """Drop what C{held} holds, in the thread that runs this (freeing a
    large index takes tens of milliseconds)."""
    held.clear()


class CentralLists:
    """
    @ivar remote: the central office's lists held here: name -> version
        (set by L{numberok.lists.ListsService} from the database at
        start).
    """

    remote: dict[str, int]

    def isRemote(self, name: str) -> bool:
        """Whether C{name} is a central office's list (read-only here)."""
        return name in self.remote

    async def snapshot(self, name: str) -> bytes:
        """
        The list as one JSON message for the broker: C{version} (the
        server's time in ms at its last change: sent again unchanged, it
        is the same), the list and every entry; empty bytes when the list
        is gone.
        """
        def read(s: "ListsStore") -> bytes:
            found = [l for l in s.lists() if l.name == name]
            if not found:
                return b""
            return json.dumps({
                "version": s.version(name), "list": found[0].toJSON(),
                "entries": [e.toJSON() for e in s.entries(name)]},
                ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        return await self._after(read)

    async def applyRemote(self, name: str, payload: bytes) -> str:
        """
        A central office's list as published (L{snapshot}): stored and
        indexed in the thread if newer than the copy held, applied in one
        step; an empty payload removes it.  A local list of the same name
        stays as it is.

        @return: C{"applied"}, C{"removed"}, C{"old"} or C{"local"}.
        @raise ListError: a message that is not a valid list.
        """
        if name in self.matcher.indexes and name not in self.remote:
            return "local"
        zone = self.zone

        def store(s: "ListsStore"):
            if not payload:
                s.deleteList(name)
                return None
            try:
                obj = json.loads(payload.decode("utf-8"))
                version = obj["version"]
                plateList = parseList(obj["list"])
                entries = [parseEntry(e, zone, float("-inf"))
                           for e in obj["entries"]]
            except ListError:
                raise
            except (ValueError, KeyError, TypeError, AttributeError) as e:
                raise ListError({"message": "not a list message: %s"
                                            % (e,)})
            if plateList.name != name or not isinstance(version, int):
                raise ListError({"message": "name or version do not fit "
                                            "the topic"})
            held = s.remote()
            if name not in held and any(l.name == name for l in s.lists()):
                return "local"
            if version <= held.get(name, -1):
                return "old"
            s.putRemote(plateList, version, entries)
            return version, ListIndex(plateList, zone, entries)
        try:
            result = await self._after(store)
        except ListError:
            self.metrics.listRefused.labels(what="broker").inc()
            raise
        if result is None:
            self.remote.pop(name, None)
            self.matcher.drop(name)
            self._countEntries()
            return "removed"
        if result == "old":
            return "old"
        version, index = result
        old = self.matcher.indexes.get(name)
        self.remote[name] = version
        self.matcher.put(index)
        if old is not None:
            self.threads.run(release, [old])
            del old
        self._countEntries()
        return "applied"
