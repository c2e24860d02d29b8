"""
The README's quick start, as a new user runs it from a clone: what it
writes into the checkout must not show up as untracked files.
"""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from conftest import ROOT


def quickStartOutputs() -> list[str]:
    """The paths the README's quick-start commands write into the
    current folder (the clone)."""
    text = (ROOT / "README.rst").read_text(encoding="utf-8")
    start = text.index("Try it: server with demo traffic")
    quick = text[start:text.index("Run the tests", start)]
    paths = re.findall(r"--save-screenshots\s+(\S+)", quick)
    assert paths, "the quick start no longer saves screenshots"
    return [p + "/" for p in paths] + ["numberok.ini", "journal/"]


def test_the_quick_start_leaves_no_untracked_files_in_the_clone():
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    for path in quickStartOutputs():
        ignored = subprocess.run(
            ["git", "check-ignore", "-q", "--no-index", path], cwd=str(ROOT))
        assert ignored.returncode == 0, "%s is not ignored by git" % (path,)
