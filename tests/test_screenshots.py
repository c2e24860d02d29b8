"""
Tests for numberok.screenshots: re-encoding, scaling to fit, invalid frames
and the thread pool.  Frames are made with Pillow; the pool is real.
"""

import random
import threading
from io import BytesIO

import pytest
import pytest_twisted
from PIL import Image, ImageDraw, ImageFile
from twisted.internet.defer import gatherResults
from twisted.logger import capturedLogs
from zope.interface.verify import verifyObject

from numberok.interfaces import IScreenshotEncoder
from numberok.screenshots import (
    ImageDoesNotFit, InvalidImage, ScreenshotService, reencode)


def makeFrame(width=640, height=360, quality=90, seed=0):
    """A busy frame (gradient, noise, text) that compresses like a photo."""
    rng = random.Random(seed)
    image = Image.linear_gradient("L").resize((width, height)).convert("RGB")
    noise = Image.effect_noise((width, height), 40).convert("RGB")
    image = Image.blend(image, noise, 0.35)
    draw = ImageDraw.Draw(image)
    for _ in range(30):
        x, y = rng.randrange(width), rng.randrange(height)
        draw.rectangle((x, y, x + rng.randrange(60), y + rng.randrange(40)),
                       fill=tuple(rng.randrange(256) for _ in range(3)))
    draw.text((width // 3, height // 2), "A123BC77", fill=(255, 255, 255))
    out = BytesIO()
    image.save(out, "JPEG", quality=quality)
    return out.getvalue()


FRAME = makeFrame()


def opened(data):
    image = Image.open(BytesIO(data), formats=("JPEG",))
    image.load()
    return image


def reactor():
    from twisted.internet import reactor
    return reactor


def timed(d):
    return d.addTimeout(5, reactor())


@pytest_twisted.async_yield_fixture
async def service():
    s = ScreenshotService(reactor(), threads=2)
    s.startService()
    yield s
    await timed(s.stopService())


# --- the blocking function ---------------------------------------------------

def test_reencode_gives_a_valid_jpeg_of_the_same_size():
    data = reencode(FRAME, 50, 1 << 20)
    image = opened(data)
    assert image.format == "JPEG"
    assert image.size == (640, 360)


def test_reencode_quality_changes_size():
    low = reencode(FRAME, 10, 1 << 20)
    mid = reencode(FRAME, 50, 1 << 20)
    high = reencode(FRAME, 100, 1 << 20)
    assert len(low) < len(mid) < len(high)


def test_reencode_scales_a_big_frame_down_to_fit():
    big = makeFrame(1920, 1080, quality=95)
    data = reencode(big, 90, 60_000)
    assert len(data) <= 60_000
    width, height = opened(data).size
    assert width < 1920
    assert abs(width / height - 16 / 9) < 0.02


def test_reencode_refuses_when_nothing_fits():
    with pytest.raises(ImageDoesNotFit):
        reencode(FRAME, 50, 100)


@pytest.mark.parametrize("data", [
    b"", b"not a jpeg", FRAME[:len(FRAME) // 2], b"\xff\xd8\xff" + b"\0" * 99,
])
def test_reencode_refuses_invalid_or_truncated_data(data):
    with pytest.raises(InvalidImage):
        reencode(data, 50, 1 << 20)


def test_reencode_refuses_other_formats():
    out = BytesIO()
    Image.new("RGB", (32, 32)).save(out, "PNG")
    with pytest.raises(InvalidImage):
        reencode(out.getvalue(), 50, 1 << 20)


def test_reencode_refuses_decompression_bombs_before_decoding():
    out = BytesIO()
    Image.new("L", (2000, 2000)).save(out, "JPEG")
    with pytest.raises(InvalidImage, match="more than the 1000000 pixels"):
        reencode(out.getvalue(), 50, 1 << 20, maxPixels=1_000_000)


def headerOnlyJpeg(width: int, height: int) -> bytes:
    """A small JPEG whose header claims C{width} x C{height}: an 8x8 one
    with its frame header's size rewritten (the data stays 8x8's)."""
    out = BytesIO()
    Image.new("L", (8, 8)).save(out, "JPEG")
    data = out.getvalue()
    sof = data.index(b"\xff\xc0")
    return (data[:sof + 5] + height.to_bytes(2, "big")
            + width.to_bytes(2, "big") + data[sof + 9:])


@pytest_twisted.inlineCallbacks
def test_tiny_jpeg_claiming_6300x6300_is_refused_counted_never_decoded(
        service, monkeypatch):
    claim = headerOnlyJpeg(6300, 6300)
    assert len(claim) < 1000
    decoded = []
    pillowLoad = ImageFile.ImageFile.load

    def recordingLoad(image, *args):
        decoded.append(image.size)
        return pillowLoad(image, *args)

    monkeypatch.setattr(ImageFile.ImageFile, "load", recordingLoad)
    result = yield timed(service.encode(claim, 50, 1 << 20))
    assert result is None and decoded == []
    assert skipped(service, "invalid") == 1
    with pytest.raises(InvalidImage, match="6300x6300 is more than the "
                       "12000000 pixels"):
        reencode(claim, 50, 1 << 20)


def test_reencode_accepts_grey_and_cmyk_frames():
    for mode in ("L", "CMYK"):
        out = BytesIO()
        Image.new(mode, (64, 48)).save(out, "JPEG")
        assert opened(reencode(out.getvalue(), 50, 1 << 20)).size == (64, 48)


# --- the service -------------------------------------------------------------

def encoded(service) -> float:
    return service.metrics.value("numberok_screenshots_encoded_total")


def cacheHits(service) -> float:
    return service.metrics.value("numberok_screenshot_cache_hits_total")


def skipped(service, reason: str) -> float:
    return service.metrics.value("numberok_screenshots_skipped_total",
                                 reason=reason)


def test_service_provides_the_encoder_interface():
    assert verifyObject(IScreenshotEncoder, ScreenshotService(threads=1))


def test_service_uses_a_thread_per_core_by_default():
    import os
    assert ScreenshotService().threads == (os.cpu_count() or 1)
    with pytest.raises(ValueError):
        ScreenshotService(threads=0)


@pytest_twisted.inlineCallbacks
def test_encode_fires_with_a_jpeg_and_counts(service):
    data = yield timed(service.encode(FRAME, 50, 1 << 20))
    assert opened(data).size == (640, 360)
    assert encoded(service) == 1
    assert skipped(service, "invalid") == 0


@pytest_twisted.inlineCallbacks
def test_encode_quality_changes_size(service):
    low, high = yield timed(gatherResults([
        service.encode(FRAME, 10, 1 << 20),
        service.encode(FRAME, 100, 1 << 20)]))
    assert len(low) < len(high)


@pytest_twisted.inlineCallbacks
def test_encode_clamps_quality_to_the_allowed_range(service):
    below, ten = yield timed(gatherResults([
        service.encode(FRAME, 1, 1 << 20),
        service.encode(FRAME, 10, 1 << 20)]))
    assert below == ten


@pytest_twisted.inlineCallbacks
def test_encode_scales_a_big_frame_to_fit(service):
    big = makeFrame(1920, 1080, quality=95, seed=2)
    data = yield timed(service.encode(big, 90, 60_000))
    assert len(data) <= 60_000
    assert opened(data).size[0] < 1920


@pytest_twisted.inlineCallbacks
def test_encode_of_invalid_bytes_fires_none_and_logs_once_per_channel(
        service):
    with capturedLogs() as events:
        results = yield timed(gatherResults([
            service.encode(b"garbage %d" % (i,), 50, 1 << 20, channel=i % 2)
            for i in range(6)] + [
            service.encode(FRAME[:500], 50, 1 << 20, channel=1)]))
    assert results == [None] * 7
    assert skipped(service, "invalid") == 7
    warnings = [e for e in events if e.get("log_namespace", "").startswith(
        "numberok.screenshots") and "usable JPEG" in e["log_format"]]
    assert sorted(e["channel"] for e in warnings) == [0, 1]


@pytest_twisted.inlineCallbacks
def test_encode_of_a_non_bytes_frame_fires_none(service):
    result = yield timed(service.encode(None, 50, 1 << 20))
    assert result is None
    assert skipped(service, "invalid") == 1


@pytest_twisted.inlineCallbacks
def test_encode_that_cannot_fit_fires_none(service):
    result = yield timed(service.encode(FRAME, 50, 100))
    assert result is None
    assert skipped(service, "unfit") == 1


@pytest_twisted.inlineCallbacks
def test_encode_runs_off_the_reactor_thread(service, monkeypatch):
    # Record where Pillow's own JPEG writer runs.
    frames = [makeFrame(seed=s) for s in range(4)]
    seen = []
    pillowSave = Image.SAVE["JPEG"]

    def recordingSave(*args, **kwargs):
        seen.append(threading.current_thread())
        return pillowSave(*args, **kwargs)

    monkeypatch.setitem(Image.SAVE, "JPEG", recordingSave)
    yield timed(gatherResults([service.encode(frame, 50, 1 << 20)
                               for frame in frames]))
    assert len(seen) == 4
    reactorThread = threading.current_thread()
    assert all(t is not reactorThread for t in seen)
    assert all("numberok-screenshots" in t.name for t in seen)


@pytest_twisted.inlineCallbacks
def test_same_frame_is_encoded_once(service):
    first, second = yield timed(gatherResults([
        service.encode(FRAME, 50, 1 << 20),
        service.encode(FRAME, 50, 1 << 20)]))
    third = yield timed(service.encode(FRAME, 50, 1 << 20))
    assert first == second == third
    assert encoded(service) == 1
    assert cacheHits(service) == 2


@pytest_twisted.inlineCallbacks
def test_encode_past_the_backlog_fires_none_at_once(service):
    service.maxBacklog = 1
    with capturedLogs() as events:
        first = service.encode(makeFrame(seed=5), 50, 1 << 20)
        second = service.encode(makeFrame(seed=6), 50, 1 << 20)
        assert second.called and second.result is None
        yield timed(first)
    assert skipped(service, "overloaded") == 1
    assert any("backlog full" in e.get("log_format", "") for e in events)


@pytest_twisted.inlineCallbacks
def test_encode_when_stopped_fires_none():
    s = ScreenshotService(reactor(), threads=1)
    assert (yield s.encode(FRAME, 50, 1 << 20)) is None
    s.startService()
    yield timed(s.stopService())
    assert (yield s.encode(FRAME, 50, 1 << 20)) is None


@pytest_twisted.inlineCallbacks
def test_queued_work_finishes_when_the_service_stops():
    s = ScreenshotService(reactor(), threads=1)
    s.startService()
    pending = [s.encode(makeFrame(seed=i), 50, 1 << 20) for i in range(3)]
    yield timed(s.stopService())
    results = yield timed(gatherResults(pending))
    assert all(opened(r).size == (640, 360) for r in results)


@pytest_twisted.inlineCallbacks
def test_cache_tells_different_frames_apart(service):
    other = makeFrame(seed=9)
    first = yield timed(service.encode(FRAME, 50, 1 << 20))
    second = yield timed(service.encode(other, 50, 1 << 20))
    assert first != second
    assert encoded(service) == 2
    assert cacheHits(service) == 0
