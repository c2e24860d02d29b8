"""
Invisible characters in plate text (issue 21, attack 6): control (Cc) and
format (Cf) characters and the line and paragraph separators are taken
out of a plate at every edge a plate comes in by, through the one
sanitiser L{numberok.plates.cleanRaw}.
"""

from __future__ import annotations

import json
import re
import unicodedata

import pytest
from hypothesis import given, settings as hsettings, strategies as st

from numberok.events import EventState, MovementType, PlateEvent
from numberok.mqtt.payload import decodeEvent, encodeEvent
from numberok.plates import cleanRaw
from numberok.sources.formats import ReadFormatError, parseReadLine
from numberok.sources.hikvision import parseAlarm
from numberok.sources.replay import _Reader
from numberok.sources.watch import parseName
from numberok.web.ingest import parseBody

# NEL (C1 control), right-to-left override, zero-width space, BOM, line
# separator, paragraph separator, soft hyphen, word joiner.
INVISIBLE = "\u0085\u202e\u200b\ufeff\u2028\u2029\u00ad\u2060"
DIRTY = "A1\u200b23\u202eB\u0085C7\u20287"
CLEAN = "A123BC77"
NOW = 1_700_000_000_000


def test_every_invisible_kind_is_taken_out():
    assert cleanRaw(" " + INVISIBLE + "A" + INVISIBLE + "1 ") == "A1"


@hsettings(max_examples=200, deadline=None)
@given(st.text())
def test_nothing_of_format_or_control_category_survives(text):
    cleaned = cleanRaw(text)
    assert not [ch for ch in cleaned
                if unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp")]


def test_a_plate_of_invisible_characters_only_is_refused_by_name():
    line = json.dumps({"plate": INVISIBLE}).encode()
    with pytest.raises(ReadFormatError) as caught:
        parseReadLine(line, NOW)
    assert caught.value.field == "plate"


@pytest.mark.parametrize("extra", [{}, {"zone": 1, "extra_member": 1}],
                         ids=["fast path", "field by field"])
def test_ingest_json(extra):
    line = json.dumps(dict({"plate": DIRTY}, **extra)).encode()
    [read] = parseReadLine(line, NOW)
    assert read.plate == CLEAN


def test_openalpr():
    obj = {"data_type": "alpr_results", "epoch_time": 1764000200,
           "camera_id": 1, "results": [{"plate": DIRTY, "confidence": 90.0}]}
    [read] = parseReadLine(json.dumps(obj).encode(), NOW)
    assert read.plate == CLEAN


def test_hikvision():
    xml = ("<EventNotificationAlert><eventType>ANPR</eventType><ANPR>"
           "<licensePlate>%s</licensePlate></ANPR></EventNotificationAlert>"
           % (DIRTY.replace("\u0085", "&#133;"),)).encode("utf-8")
    alarm = parseAlarm("application/xml", xml, NOW)
    assert alarm.read.plate == CLEAN


def test_http_reads():
    [read] = parseBody("application/json",
                       json.dumps({"plate": DIRTY}).encode(), NOW)
    assert read.plate == CLEAN


def test_replay(tmp_path):
    path = tmp_path / "reads.jsonl"
    path.write_bytes(json.dumps({"plate": DIRTY, "time_ms": NOW}).encode()
                     + b"\n")
    items, _ = _Reader(str(path), 65536).readBatch(10, 65536)
    [(lineNo, read, _)] = items
    assert read.plate == CLEAN


def test_watch_folder_file_name():
    pattern = re.compile(r"(?P<time>\d{14})_(?P<plate>.+)\.jpg")
    read = parseName(pattern, "20251124153012_%s.jpg" % (DIRTY,), None)
    assert read.plate == CLEAN


def test_collected_mqtt_event():
    event = PlateEvent(
        state=EventState.LOST, runtimeId=31, channel=2, zone=1,
        plate=DIRTY, rawPlate=DIRTY, frameTimeMs=NOW, processTimeMs=40,
        movement=MovementType.OUT, checkpoint=5, confidence=0.93, reads=6)
    collected = decodeEvent("numberok/14/events/2/1",
                            encodeEvent(event, 14, 99))
    assert (collected.event.plate, collected.event.rawPlate) == (CLEAN, CLEAN)
