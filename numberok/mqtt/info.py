"""
A site's retained info message: where its MQTT outbox stands, so a
collector that first hears of the site knows which journal ids it should
have (L{numberok.mqtt.gaps.Gaps.introduce}; docs/mqtt.rst, "Gaps").

On C{<prefix>/<SystemId>/info}, retained, QoS 1::

    {"SystemId": 7, "epoch": "<journal epoch>", "first_id": 1,
     "last_id": 900, "oldest_id": 1}

C{first_id}: the first journal id the site's outbox ever published (where
its cursor stood at its very first run, plus one: the journal's history
before was never published).  C{last_id}: the newest of its own Lost
events the broker acknowledged since the site started (C{null} before
one).  C{oldest_id}: the oldest id its journal still keeps (C{null} when
empty): what is older cannot be published again.  C{epoch}: the journal's
identity, for the operator.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from numberok.mqtt.payload import checkInt, decodeObject, encodeObject
from numberok.sources.formats import ReadFormatError

MAX_INFO_BYTES = 1024
"""An info message is about 150 bytes; more is refused unread."""


def infoTopic(prefix: str, systemId: int) -> str:
    """Where site C{systemId} says, retained, where its outbox stands."""
    return "%s/%d/info" % (prefix, systemId)


def infoFilter(prefix: str) -> str:
    """Every site's L{infoTopic}, for a collector."""
    return "%s/+/info" % (prefix,)


@dataclass(frozen=True, slots=True)
class SiteInfo:
    """One site's info message, validated."""

    systemId: int
    epoch: str
    firstId: int
    lastId: Optional[int]
    oldestId: Optional[int]


def encodeInfo(info: SiteInfo) -> bytes:
    return encodeObject({"SystemId": info.systemId, "epoch": info.epoch,
                         "first_id": info.firstId, "last_id": info.lastId,
                         "oldest_id": info.oldestId})


def decodeInfo(topic: str, payload: bytes, prefix: str) -> SiteInfo:
    """
    Validate an info message of C{topic}.

    @raise ReadFormatError: naming the first bad member; the topic must be
        exactly the payload's SystemId's L{infoTopic}.
    """
    if len(payload) > MAX_INFO_BYTES:
        raise ReadFormatError("message", "info over %d bytes"
                              % (MAX_INFO_BYTES,))
    obj = decodeObject(payload)
    systemId = checkInt(obj, "SystemId", 0, 2 ** 31 - 1)
    if topic != infoTopic(prefix, systemId):
        raise ReadFormatError("SystemId", "%d does not match the topic %s"
                              % (systemId, topic))
    epoch = obj.get("epoch", "")
    if not isinstance(epoch, str) or len(epoch) > 64:
        raise ReadFormatError("epoch", "must be a string of at most 64 "
                              "characters")
    firstId = checkInt(obj, "first_id", 1)
    lastId = (None if obj.get("last_id") is None
              else checkInt(obj, "last_id", 1))
    oldestId = (None if obj.get("oldest_id") is None
                else checkInt(obj, "oldest_id", 1))
    return SiteInfo(systemId, epoch, firstId, lastId, oldestId)
