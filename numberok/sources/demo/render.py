"""
Drawing the demo's frames: L{renderFrame} turns a L{Scene} into the same
JPEG bytes every time (for a Pillow version).  Blocking: the demo source
calls it in its worker thread.
"""

from __future__ import annotations

import datetime
import functools
import io

from numberok.sources.demo.simulation import (FRAME_HEIGHT, FRAME_WIDTH,
                                              JPEG_QUALITY, ZONES, Scene)


@functools.lru_cache(maxsize=32)
def _font(size: int):
    from PIL import ImageFont
    try:
        return ImageFont.load_default(size=size)
    except TypeError:      # Pillow < 10.1: one bitmap size only
        return ImageFont.load_default()


def plateFont(text: str, width: int, height: int):
    """
    The largest font (up to 80 % of the plate's height) in which C{text}
    fits the plate's C{width} with a margin on each side, so that no
    character is drawn over the plate's edge -- and none is cut from a
    crop of the plate's box.
    """
    room = width - 2 * max(2, round(width * 0.06))
    size = max(8, round(height * 0.8))
    font = _font(size)
    while size > 6 and font.getlength(text) > room:
        size -= 1
        font = _font(size)
    return font


_BACKGROUNDS = (((120, 150, 175), (70, 72, 76)),
                ((160, 170, 150), (85, 80, 75)),
                ((60, 70, 95), (45, 47, 52)))


def renderFrame(scene: Scene) -> bytes:
    """
    Draw C{scene} and encode it as a JPEG.  Blocking (a few milliseconds):
    call it in a thread.  Deterministic for a scene and a Pillow version.
    """
    from PIL import Image, ImageDraw
    sky, road = _BACKGROUNDS[scene.background]
    image = Image.new("RGB", (FRAME_WIDTH, FRAME_HEIGHT), road)
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 0, FRAME_WIDTH, 70), fill=sky)
    for lane in range(1, ZONES):
        x = lane * FRAME_WIDTH // ZONES
        for y in range(80, FRAME_HEIGHT, 40):
            draw.line((x, y, x, y + 20), fill=(220, 220, 210), width=3)
    x, y, w, h = scene.bbox
    cx = x + w / 2
    carW, carH = w * scene.body, w * 1.25
    top = y + h * 1.6 - carH
    draw.rounded_rectangle(
        (cx - carW / 2, top, cx + carW / 2, y + h * 1.6),
        radius=max(2, round(w / 8)), fill=scene.colour, outline=(15, 15, 15))
    roofW = carW * scene.roof
    draw.rectangle((cx - roofW / 2, top + carH * 0.08, cx + roofW / 2,
                    top + carH * 0.42), fill=(35, 45, 60))
    for side in (-1, 1):
        lx = cx + side * (carW / 2 - w * 0.25)
        draw.ellipse((lx - w * 0.12, y - h * 0.2, lx + w * 0.12,
                      y + h * 0.5), fill=(245, 240, 200))
    draw.rectangle((x, y, x + w - 1, y + h - 1), fill=(250, 250, 250),
                   outline=(0, 0, 0))
    font = plateFont(scene.plate_text, w, h)
    draw.text((cx, y + h / 2), scene.plate_text, fill=(0, 0, 0), font=font,
              anchor="mm")
    stamp = datetime.datetime.fromtimestamp(
        scene.timeMs / 1000, datetime.timezone.utc)
    draw.text((8, 6), "CAM %d  ZONE %d  %s UTC" % (
        scene.channel, scene.zone,
        stamp.strftime("%Y-%m-%d %H:%M:%S.") + "%03d" % (scene.timeMs % 1000)),
        fill=(255, 255, 255), font=_font(14))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=JPEG_QUALITY)
    return out.getvalue()
