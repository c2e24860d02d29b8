"""
The NumberOk byte format (numberok.wire): golden bytes written by hand from
the protocol document, round trips and arbitrary input as properties, and
the decoder fed at every kind of chunk boundary.
"""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings, strategies as st

from numberok import wire
from numberok.events import (
    EventState,
    MovementType,
    PlateEvent,
    eventPairs,
    unicodePlateNumber,
)

# --- strategies ---------------------------------------------------------

_text = st.characters(blacklist_characters="\x00\x05",
                      blacklist_categories=("Cs",))
keys = st.text(alphabet=st.characters(blacklist_characters="=\x00\x05",
                                      blacklist_categories=("Cs",)),
               min_size=1, max_size=20)
values = st.text(alphabet=_text, max_size=40)
pairLists = st.lists(st.tuples(keys, values), max_size=12)
jpegs = st.binary(max_size=300)


def _splitAt(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    chunks, last = [], 0
    for p in points + [len(data)]:
        chunks.append(data[last:p])
        last = p
    return chunks


def _feedAll(decoder: wire.PacketDecoder, chunks) -> list[wire.Packet]:
    packets = []
    for chunk in chunks:
        packets += decoder.feed(chunk)
    return packets


# --- golden vectors -----------------------------------------------------

def test_event_packet_has_the_documented_bytes():
    """
    Header C{21 00 00 00 <len LE>}, pairs joined by 0x05, then 00 00: the
    bytes here are typed from docs/protocol.rst, not computed by the codec.
    """
    expected = (
        b"\x21\x00\x00\x00"          # pType 0x21, little-endian
        b"\x41\x00\x00\x00"          # len 65 = 10+1+20+1+10+1+20 + 2
        b"SystemId=1"                 # 10
        b"\x05Status=IAService.LPR"   # 1 + 20
        b"\x05State=Lost"             # 1 + 10
        b"\x05PlateNumber=A123BC77"   # 1 + 20
        b"\x00\x00")
    packet = wire.encodeEvent([
        ("SystemId", "1"),
        ("Status", "IAService.LPR"),
        ("State", "Lost"),
        ("PlateNumber", "A123BC77"),
    ])
    assert packet == expected


def test_event_with_jpeg_puts_it_after_the_two_zero_bytes():
    packet = wire.encodeEvent([("K", "v")], b"\xff\xd8JPEG\xff\xd9")
    assert packet == (b"\x21\x00\x00\x00\x0d\x00\x00\x00"
                      b"K=v\x00\x00\xff\xd8JPEG\xff\xd9")


def test_subscribe_packet_is_type_0x19_with_no_data():
    assert wire.subscribePacket() == b"\x19\x00\x00\x00\x00\x00\x00\x00"


def test_event_without_pairs_is_just_the_terminator():
    assert wire.encodeEvent([]) == b"\x21\x00\x00\x00\x02\x00\x00\x00\x00\x00"
    assert wire.decodeEventData(b"\x00\x00") == ([], b"")


def test_length_is_little_endian_across_all_four_bytes():
    value = "x" * 70000
    packet = wire.encodeEvent([("K", value)])
    assert packet[4:8] == struct.pack("<I", 70004)
    assert packet[4:8] == bytes([0x74, 0x11, 0x01, 0x00])


def test_utf8_text_is_sent_as_utf8_bytes():
    packet = wire.encodeEvent([("PlateNumber", "А123ВС77")])
    text = "PlateNumber=А123ВС77".encode("utf-8")
    assert packet[8:] == text + b"\x00\x00"


def test_unicode_plate_number_is_utf16_code_units_in_upper_hex():
    assert unicodePlateNumber("BÜ 1234") == "004200DC00200031003200330034"


def test_unicode_plate_number_keeps_surrogate_pairs_as_two_units():
    assert unicodePlateNumber("\U0001F697") == "D83DDE97"


ALWAYS_PRESENT = [
    "SystemId", "Status", "State", "RuntimeID", "FrameTimeStampMs",
    "PlateNumber", "RawPlateNumber", "UnicodePlateNumber", "ZoneIndex",
    "ChannelIndex", "MovementType", "uMovementType", "Checkpoint",
]


def _event(**kw) -> PlateEvent:
    base = dict(state=EventState.DETECTED, runtimeId=1764000000001,
                channel=1, zone=2, plate="BÜ 1234", rawPlate="BU 1234",
                frameTimeMs=1764000000123)
    base.update(kw)
    return PlateEvent(**base)


def test_event_pairs_hold_every_always_present_key():
    keys = [k for k, _ in eventPairs(_event(), systemId=7)]
    for key in ALWAYS_PRESENT:
        assert key in keys, key
    assert "TestMode" not in keys


def test_event_pairs_spell_the_documented_values():
    fields = dict(eventPairs(_event(movement=MovementType.TRY_OUT),
                             systemId=7, testMode=True))
    assert fields["SystemId"] == "7"
    assert fields["Status"] == "IAService.LPR"
    assert fields["State"] == "Detected"
    assert fields["RuntimeID"] == "1764000000001"
    assert fields["MovementType"] == "TryOut"
    assert fields["uMovementType"] == "4"
    assert fields["UnicodePlateNumber"] == "004200DC00200031003200330034"
    assert fields["PlateNumber"] == fields["Plate"] == "BÜ 1234"
    assert fields["RawPlateNumber"] == "BU 1234"
    assert fields["TestMode"] == "Enabled"
    assert (fields["ZoneIndex"], fields["ChannelIndex"]) == ("2", "1")


def test_event_pairs_encode_and_decode_back():
    pairs = eventPairs(_event(), systemId=1)
    packet = wire.encodeEvent(pairs, b"\xff\xd8")
    (decoded,) = wire.PacketDecoder().feed(packet)
    assert wire.decodeEventData(decoded.data) == (pairs, b"\xff\xd8")


# --- encoder refusals ---------------------------------------------------

@pytest.mark.parametrize("value", ["A1\x0023", "A1\x0523", "\x05", "\x00"])
def test_encoder_refuses_framing_bytes_in_values(value):
    with pytest.raises(wire.WireError, match="PlateNumber"):
        wire.encodePairs([("PlateNumber", value)])


@pytest.mark.parametrize("key", ["", "a=b", "=", "K\x00", "K\x05"])
def test_encoder_refuses_bad_keys(key):
    with pytest.raises(wire.WireError, match="invalid key"):
        wire.encodePairs([(key, "v")])



@pytest.mark.parametrize("pair", [("PlateNumber", "A\ud800"),
                                  ("K\udc80", "v")])
def test_encoder_refuses_lone_surrogates_with_wire_error(pair):
    """
    A recognizer's plate arrives as JSON, where C{"\\ud800"} is a legal
    escape that Python decodes to a lone surrogate: not encodable as UTF-8.
    """
    with pytest.raises(wire.WireError):
        wire.encodePairs([pair])


def test_encoder_refuses_data_over_one_mebibyte():
    with pytest.raises(wire.WireError, match="exceeds"):
        wire.encodeEvent([("K", "v")], b"\x00" * wire.MAX_DATA_LENGTH)


def test_encoder_accepts_data_of_exactly_one_mebibyte():
    jpeg = b"\xff" * (wire.MAX_DATA_LENGTH - len(b"K=v\x00\x00"))
    packet = wire.encodeEvent([("K", "v")], jpeg)
    assert len(packet) == wire.HEADER_SIZE + wire.MAX_DATA_LENGTH
    (decoded,) = wire.PacketDecoder().feed(packet)
    assert wire.decodeEventData(decoded.data) == ([("K", "v")], jpeg)


# --- decoder ------------------------------------------------------------

def test_oversize_length_is_refused_from_the_header_alone():
    """
    The announced length is checked before any data is buffered, so a peer
    announcing 4 GiB costs us 8 bytes, not 4 GiB.
    """
    decoder = wire.PacketDecoder()
    header = struct.pack("<II", wire.PT_EVENT, wire.MAX_DATA_LENGTH + 1)
    assert decoder.feed(header[:7]) == []
    with pytest.raises(wire.WireError, match="announces"):
        decoder.feed(header[7:])
    assert decoder.buffered == 8


def test_disallowed_packet_type_is_refused():
    decoder = wire.PacketDecoder(allowedTypes=[wire.PT_SUBSCRIBE])
    with pytest.raises(wire.WireError, match="0x21"):
        decoder.feed(wire.encodeEvent([("K", "v")]))


def test_subscribe_is_accepted_where_allowed():
    decoder = wire.PacketDecoder(allowedTypes=[wire.PT_SUBSCRIBE])
    assert decoder.feed(wire.subscribePacket()) == [
        wire.Packet(wire.PT_SUBSCRIBE, b"")]


def test_decoder_holds_a_partial_packet_until_it_completes():
    packet = wire.encodeEvent([("K", "v")])
    decoder = wire.PacketDecoder()
    assert decoder.feed(packet[:-1]) == []
    assert decoder.buffered == len(packet) - 1
    assert decoder.feed(packet[-1:]) == [wire.Packet(wire.PT_EVENT,
                                                     b"K=v\x00\x00")]
    assert decoder.buffered == 0


def test_decoded_value_may_hold_equals_signs():
    assert wire.decodeEventData(b"K=a=b\x05L==\x00\x00") == (
        [("K", "a=b"), ("L", "=")], b"")


def test_duplicate_keys_are_kept_in_order():
    assert wire.decodeEventData(b"K=1\x05K=2\x00\x00")[0] == [("K", "1"),
                                                             ("K", "2")]


@pytest.mark.parametrize("data, message", [
    (b"K=v", "terminator"),
    (b"K=v\x05\x00\x00", "key=value"),
    (b"Kv\x00\x00", "key=value"),
    (b"=v\x00\x00", "key=value"),
    (b"K=\xff\x00\x00", "UTF-8"),
])
def test_malformed_event_data_is_refused_with_a_reason(data, message):
    with pytest.raises(wire.WireError, match=message):
        wire.decodeEventData(data)


# --- properties ---------------------------------------------------------

@given(pairLists, jpegs)
def test_pairs_and_jpeg_survive_a_round_trip(pairs, jpeg):
    packet = wire.encodeEvent(pairs, jpeg)
    (decoded,) = wire.PacketDecoder(allowedTypes=[wire.PT_EVENT]).feed(packet)
    assert decoded.ptype == wire.PT_EVENT
    assert wire.decodeEventData(decoded.data) == (pairs, jpeg)


@given(st.lists(st.tuples(pairLists, jpegs), min_size=1, max_size=5),
       st.lists(st.integers(min_value=0), max_size=20))
def test_decoder_gives_the_same_packets_however_the_bytes_are_split(
        events, cuts):
    stream = b"".join(wire.encodeEvent(p, j) for p, j in events)
    expected = _feedAll(wire.PacketDecoder(), [stream])
    assert [wire.decodeEventData(p.data) for p in expected] == events
    assert _feedAll(wire.PacketDecoder(), _splitAt(stream, cuts)) == expected
    byteByByte = wire.PacketDecoder()
    assert _feedAll(byteByByte, [stream[i:i + 1]
                                 for i in range(len(stream))]) == expected
    assert byteByByte.buffered == 0


@settings()
@given(st.binary(max_size=200), st.lists(st.integers(min_value=0),
                                         max_size=8))
def test_arbitrary_bytes_raise_nothing_but_wire_error(data, cuts):
    decoder = wire.PacketDecoder()
    try:
        for chunk in _splitAt(data, cuts):
            for packet in decoder.feed(chunk):
                wire.decodeEventData(packet.data)
    except wire.WireError:
        pass
    try:
        wire.decodeEventData(data)
    except wire.WireError:
        pass


@given(st.binary(max_size=60))
def test_arbitrary_event_data_after_a_valid_header_raises_only_wire_error(
        data):
    """
    Well framed garbage: the header is right, the data is anything.
    """
    (packet,) = wire.PacketDecoder().feed(
        wire.encodePacket(wire.PT_EVENT, data))
    try:
        pairs, jpeg = wire.decodeEventData(packet.data)
    except wire.WireError:
        return
    assert all(k and "=" not in k for k, _ in pairs)


# st.text() never yields lone surrogates, so build strings by hand.
_anyText = st.lists(st.one_of(
    st.characters(),
    st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF,
                  categories=["Cs"])), max_size=8).map("".join)


@given(st.lists(st.tuples(_anyText, _anyText), max_size=4))
def test_encoder_given_any_text_raises_only_wire_error(pairs):
    try:
        data = wire.encodePairs(pairs)
    except wire.WireError:
        return
    assert wire.decodeEventData(data) == (pairs, b"")
