"""
The NumberOk packet format, byte for byte (docs/protocol.rst).

Every packet is an 8-byte header -- packet type and data length, both
little-endian uint32 -- followed by the data.  Event data is
C{Key=Value} pairs joined by 0x05, closed by two zero bytes, then optional
JPEG bytes.

This module knows nothing of Twisted or sockets so that an integrator can
use it with a plain socket::

    sock.sendall(subscribePacket())
    decoder = PacketDecoder()
    while True:
        for packet in decoder.feed(sock.recv(65536)):
            pairs, jpeg = decodeEventData(packet.data)
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Iterable, Sequence

HEADER = struct.Struct("<II")
HEADER_SIZE = HEADER.size

PT_SUBSCRIBE = 0x19
"""StartEventsTransmit: client to server, no data."""

PT_EVENT = 0x21
"""Event: server to client, event data."""

MAX_DATA_LENGTH = 1024 * 1024
"""The largest data length a packet may announce (1 MiB)."""

PAIR_SEPARATOR = b"\x05"
TEXT_TERMINATOR = b"\x00\x00"
_FORBIDDEN = ("\x00", "\x05")


class WireError(ValueError):
    """
    Bytes that are not a valid NumberOk packet, or values that cannot be
    encoded into one.  The only exception this module raises for bad input.
    """


@dataclass(frozen=True, slots=True)
class Packet:
    """A decoded packet: its type and its data bytes."""

    ptype: int
    data: bytes = b""


def encodePacket(ptype: int, data: bytes = b"") -> bytes:
    """
    Frame C{data} as one packet of type C{ptype}.

    @raise WireError: when C{data} is longer than L{MAX_DATA_LENGTH}.
    """
    if len(data) > MAX_DATA_LENGTH:
        raise WireError("packet data of %d bytes exceeds the %d-byte limit"
                        % (len(data), MAX_DATA_LENGTH))
    return HEADER.pack(ptype, len(data)) + data


def subscribePacket() -> bytes:
    """The StartEventsTransmit packet a client sends after connecting."""
    return HEADER.pack(PT_SUBSCRIBE, 0)


def encodePairs(pairs: Iterable[tuple[str, str]]) -> bytes:
    """
    Encode the text part of event data, terminator included.

    @raise WireError: when a key is empty or holds C{=}, 0x00 or 0x05, or a
        value holds 0x00 or 0x05: such text would change the framing for
        every client, so it is refused here rather than sent.
    """
    parts = []
    for key, value in pairs:
        if not key or "=" in key:
            raise WireError("invalid key %r" % (key,))
        parts.append(key + "=" + value)
    text = "\x05".join(parts)
    # One scan of the joined text instead of two per pair: this runs for
    # every event, and the bad case is rare.
    if "\x00" in text or text.count("\x05") != len(parts) - 1:
        for part in parts:
            key, _, value = part.partition("=")
            if any(c in key for c in _FORBIDDEN):
                raise WireError("invalid key %r" % (key,))
            if any(c in value for c in _FORBIDDEN):
                raise WireError("value of %s holds a 0x00 or 0x05 byte"
                                % (key,))
    try:
        return text.encode("utf-8") + TEXT_TERMINATOR
    except UnicodeEncodeError as e:
        raise WireError("event text is not encodable as UTF-8 (%s)"
                        % (e.reason,)) from None


def encodeEvent(pairs: Iterable[tuple[str, str]], jpeg: bytes = b"") -> bytes:
    """
    A whole Event packet: header, pairs, terminator, optional JPEG.

    @raise WireError: see L{encodePairs} and L{encodePacket}.
    """
    return encodePacket(PT_EVENT, encodePairs(pairs) + jpeg)


def decodeEventData(data: bytes) -> tuple[list[tuple[str, str]], bytes]:
    """
    Split event data into its pairs and the binary tail.

    Keys and values are decoded as UTF-8; a value may hold C{=}, a key may
    not.  Duplicate keys are kept in order.

    @raise WireError: when the text terminator is missing, the text is not
        UTF-8, or a pair has no C{=}.
    """
    end = data.find(TEXT_TERMINATOR)
    if end < 0:
        raise WireError("event data has no 0x00 0x00 terminator")
    text, jpeg = data[:end], data[end + len(TEXT_TERMINATOR):]
    try:
        decoded = text.decode("utf-8")
    except UnicodeDecodeError as e:
        raise WireError("event text is not UTF-8: %s" % (e,)) from None
    if "\x00" in decoded:
        raise WireError("event text holds a lone 0x00 byte")
    pairs = []
    if decoded:
        for item in decoded.split("\x05"):
            key, sep, value = item.partition("=")
            if not sep or not key:
                raise WireError("event pair %r has no key=value form"
                                % (item[:40],))
            pairs.append((key, value))
    return pairs, jpeg


class PacketDecoder:
    """
    Incremental packet decoder: feed it bytes as they arrive, in chunks of any
    size, and it returns the whole packets completed so far.

    It checks the announced length before buffering the data, so a peer
    cannot make it hold more than L{MAX_DATA_LENGTH} plus one header.

    @ivar allowedTypes: packet types accepted; others raise L{WireError}.
        L{None} accepts every type.
    """

    def __init__(self, allowedTypes: Sequence[int] | None = None,
                 maxDataLength: int = MAX_DATA_LENGTH) -> None:
        self.allowedTypes = (None if allowedTypes is None
                             else frozenset(allowedTypes))
        self.maxDataLength = maxDataLength
        self._buffer = bytearray()

    @property
    def buffered(self) -> int:
        """Bytes received that do not yet make a whole packet."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[Packet]:
        """
        Add C{data}; return the packets it completes, in order.

        @raise WireError: on an unknown packet type or an oversized length.
            The decoder is then unusable; the caller closes the connection.
        """
        self._buffer += data
        packets = []
        buf = self._buffer
        offset = 0
        while len(buf) - offset >= HEADER_SIZE:
            ptype, length = HEADER.unpack_from(buf, offset)
            if self.allowedTypes is not None and ptype not in self.allowedTypes:
                raise WireError("unexpected packet type 0x%02x" % (ptype,))
            if length > self.maxDataLength:
                raise WireError("packet announces %d data bytes, limit is %d"
                                % (length, self.maxDataLength))
            end = offset + HEADER_SIZE + length
            if len(buf) < end:
                break
            packets.append(Packet(ptype, bytes(buf[offset + HEADER_SIZE:end])))
            offset = end
        if offset:
            del buf[:offset]
        return packets
