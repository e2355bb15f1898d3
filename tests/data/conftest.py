"""Data tests never reach a network: downloads fail and the package clients are fakes."""

from __future__ import annotations

import sys
import urllib.error
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # for data_builders

from data_builders import fake_client, prepend_path

import genood.data.sources as sources


def _no_network(url: object, *args: object, **kwargs: object) -> None:
    raise urllib.error.URLError("network disabled in tests")


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """No downloads; ``apt-get`` and ``npm`` on PATH are stubs that fail like an offline client."""
    monkeypatch.setattr(sources, "urlopen", _no_network)
    monkeypatch.setattr(sources, "_apt_lists_refreshed", False)
    bin_dir = tmp_path_factory.mktemp("offline-bin")
    for client in ("apt-get", "npm"):
        fake_client(
            bin_dir, client, 'print("E: network disabled in tests", file=sys.stderr)\nsys.exit(100)'
        )
    prepend_path(monkeypatch, bin_dir)
    return bin_dir
