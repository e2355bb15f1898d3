"""genood.allocator: the genood command tells glibc to keep freed memory, unless told not to."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

from genood import allocator

GLIBC = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"


def test_user_settings_win() -> None:
    assert "MALLOC_ARENA_MAX" in allocator.keep_freed_memory({"MALLOC_ARENA_MAX": "2"})
    assert allocator.STATE.startswith("allocator left to the user's settings")
    assert "GENOOD_MALLOC=default" in allocator.keep_freed_memory({"GENOOD_MALLOC": "default"})


@pytest.mark.skipif(not GLIBC, reason="mallopt is glibc's")
def test_applied_on_glibc() -> None:
    assert allocator.keep_freed_memory({}).startswith("glibc keeps freed memory")


def test_import_alone_changes_nothing() -> None:
    code = "import genood.allocator as a, genood.train; print(a.STATE)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.startswith("glibc defaults (not changed")
