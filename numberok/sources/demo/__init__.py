"""
Demo traffic: a seeded simulator of vehicles passing cameras, so a fresh
install shows events (with screenshots) without any recognizer.

 - L{simulation}: the pure model (vehicles, reads, OCR errors, scenes);
 - L{render}: a scene drawn as the same JPEG every time;
 - L{service}: L{DemoSource}, playing it on the reactor's clock;
 - L{record}: C{numberok-demo-record}, writing it as a replay file.

The model and its rates are documented in docs/sources.rst.
"""

from numberok.sources.demo.record import record, recordMain
from numberok.sources.demo.render import renderFrame
from numberok.sources.demo.service import DemoSource
from numberok.sources.demo.simulation import (CYRILLIC, MAX_RATE,
                                              OCR_OUTCOMES, DemoRead, Scene,
                                              Vehicle, makePlate, misread,
                                              reads, spell, vehicles)

__all__ = ["DemoSource", "recordMain", "record", "renderFrame", "reads",
           "vehicles", "makePlate", "misread", "spell", "Scene", "DemoRead",
           "Vehicle", "CYRILLIC", "MAX_RATE", "OCR_OUTCOMES"]
