"""
numberok: an open, NumberOk-compatible licence-plate event server on
Twisted.  C{twistd numberok-tcp} runs it (L{numberok.tap}).

C{numberok.__version__} is the installed package's version; a checkout run
without installing reports L{SOURCE_VERSION}.  It is looked up on first
use, not at import: every module of the package imports this one.
"""

from __future__ import annotations

__all__ = ["__version__", "SOURCE_VERSION"]

SOURCE_VERSION = "0.1.0"
"""The version in setup.py (a test keeps the two equal)."""


def __getattr__(name: str) -> str:
    if name != "__version__":
        raise AttributeError("module %r has no attribute %r"
                             % (__name__, name))
    from importlib.metadata import PackageNotFoundError, version
    try:
        found = version("numberok")
    except PackageNotFoundError:
        found = SOURCE_VERSION
    globals()["__version__"] = found
    return found
