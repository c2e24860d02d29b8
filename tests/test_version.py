"""
numberok.__version__: the installed package's version, or setup.py's in a
checkout that was never installed.
"""

import ast
import os
from importlib import metadata

import pytest

import numberok


def setupVersion():
    path = os.path.join(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__))), "setup.py")
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read())
    [value] = [k.value.value for node in ast.walk(tree)
               if isinstance(node, ast.Call)
               for k in node.keywords if k.arg == "version"]
    return value


@pytest.fixture
def uncached():
    """Forget the looked-up version before and after the test."""
    vars(numberok).pop("__version__", None)
    yield
    vars(numberok).pop("__version__", None)


def test_the_fallback_version_is_setup_pys():
    assert numberok.SOURCE_VERSION == setupVersion()


def test_version_comes_from_the_installed_package(monkeypatch, uncached):
    monkeypatch.setattr(metadata, "version", lambda name: "9.8.7")
    assert numberok.__version__ == "9.8.7"


def test_a_checkout_never_installed_reports_the_fallback(monkeypatch,
                                                        uncached):
    def notInstalled(name):
        raise metadata.PackageNotFoundError(name)
    monkeypatch.setattr(metadata, "version", notInstalled)
    assert numberok.__version__ == numberok.SOURCE_VERSION
    assert numberok.__version__ == setupVersion()
