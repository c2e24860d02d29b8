"""
Lists of a central office reaching a site through a real Mosquitto
(numberok.lists.share): retained, versioned, applied whole; the site keeps
its last copy while the broker is away and across its own restart; its
local lists stay its own and central lists are read-only there.
"""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pytest_twisted

from numberok.lists import Entry, ListsService, PlateList
from numberok.lists.share import ListsShare
from numberok.metrics import Metrics
from numberok.settings import Settings, SettingsStore

from conftest import bounded, getReactor, waitFor


class Instance:
    """A lists service and its sharing part, as buildServer wires them."""

    def __init__(self, folder, broker: str, share: str,
                 systemId: int) -> None:
        self.folder = str(folder)
        self.settings = SettingsStore(Settings().withChanges({
            "Mqtt.Broker": broker, "Lists.Share": share,
            "System.SystemId": systemId}), None)

    async def start(self) -> "Instance":
        self.lists = ListsService(self.folder, reactor=getReactor(),
                                  metrics=Metrics(), zone=ZoneInfo("UTC"))
        self.share = ListsShare(self.settings, self.lists,
                                metrics=self.lists.metrics,
                                reactor=getReactor())
        self.share.sendDelaySec = 0.05
        self.lists.startService()
        self.share.startService()
        await bounded(self.lists.ready)
        return self

    async def stop(self) -> None:
        await bounded(self.share.stopService())
        await bounded(self.lists.stopService())


def entries(instance: Instance, name: str) -> list[str]:
    index = instance.lists.matcher.indexes.get(name)
    return sorted(k[0] for k in index.knowns()) if index else []


@pytest_twisted.ensureDeferred
async def test_central_lists_reach_a_site_and_the_site_keeps_them(
        tmp_path, mosquitto):
    central = await Instance(tmp_path / "central", mosquitto.endpoint,
                             "publish", 1).start()
    site = await Instance(tmp_path / "site", mosquitto.endpoint,
                          "subscribe", 2).start()
    try:
        await site.lists.putList(PlateList("own", "allow"))
        await site.lists.upsert("own", [Entry("K001KK01")])
        await central.lists.putList(PlateList("banned", "deny", 1))
        await central.lists.upsert("banned", [Entry("X555XX55"),
                                              Entry("Y777YY77")])
        await waitFor(lambda: entries(site, "banned") == [
            "X555XX55", "Y777YY77"])
        assert site.lists.decide("X555XX5", 0, 0).access == "denied"
        assert site.lists.isRemote("banned")
        assert not site.lists.isRemote("own")

        # A change at the office replaces the site's copy whole.
        await central.lists.replace("banned", [Entry("Z999ZZ99")])
        await waitFor(lambda: entries(site, "banned") == ["Z999ZZ99"])

        # The office's list of the site's own name does not touch it.
        await central.lists.putList(PlateList("own", "deny"))
        await central.lists.upsert("own", [Entry("A000AA00")])
        await waitFor(lambda: ("own", "local") in site.share.applied)
        assert entries(site, "own") == ["K001KK01"]
        assert site.lists.getList("own")[0].kind == "allow"

        # The broker goes away, the site restarts: it decides on its copy.
        mosquitto.stop()
        await site.stop()
        site = await Instance(tmp_path / "site", mosquitto.endpoint,
                              "subscribe", 2).start()
        assert entries(site, "banned") == ["Z999ZZ99"]
        assert site.lists.decide("Z999ZZ99", 0, 0).access == "denied"

        # Back again: a deletion at the office removes the site's copy;
        # an old message is not applied twice.
        mosquitto.start()
        await waitFor(lambda: site.share.connection.isConnected
                      and central.share.connection.isConnected, 20)
        await central.lists.deleteList("banned")
        await waitFor(lambda: "banned" not in site.lists.matcher.indexes,
                      15)
        assert ("banned", "old") in site.share.applied
    finally:
        await central.stop()
        await site.stop()


@pytest_twisted.ensureDeferred
async def test_central_list_is_read_only_at_a_site(tmp_path, mosquitto):
    site = await Instance(tmp_path / "site", mosquitto.endpoint,
                          "subscribe", 2).start()
    try:
        result = await site.lists.applyRemote("banned", (
            b'{"version": 5, "list": {"name": "banned", "kind": "deny"}, '
            b'"entries": [{"plate": "X555XX55"}]}'))
        assert result == "applied"
        again = await site.lists.applyRemote("banned", (
            b'{"version": 4, "list": {"name": "banned"}, "entries": []}'))
        assert again == "old"
        from numberok.lists.api import ListEndpoint
        from numberok.web.common import HTTPError
        endpoint = ListEndpoint(None, site.lists, "banned")
        try:
            endpoint._writable("banned")
        except HTTPError as e:
            assert e.code == 409 and "central office" in e.errors["name"]
        else:
            raise AssertionError("a central list was writable at a site")
    finally:
        await site.stop()
