"""The package surface: lazy subpackages, a fast ``--help``, the ``py.typed`` marker."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import genood

ROOT = Path(__file__).resolve().parents[1]


def _run(code: str) -> None:
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_import_genood_imports_no_subpackage_and_no_torch() -> None:
    _run(
        "import sys, genood; "
        "loaded = sorted(m for m in sys.modules if m.startswith('genood.')); "
        "assert not loaded, loaded; assert 'torch' not in sys.modules"
    )


def test_subpackages_load_on_first_attribute_access() -> None:
    _run(
        "import genood; "
        "m = genood.models.build('glow', (1, 8, 8), levels=2, steps=1, hidden=4); "
        "assert m.num_dims == 64; assert genood.data.Preprocessing is not None"
    )
    assert set(genood.SUBMODULES) <= set(dir(genood))
    assert "models" in genood.SUBMODULES and "__version__" not in genood.SUBMODULES
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        genood.nothing  # noqa: B018


def test_help_imports_neither_torch_nor_matplotlib() -> None:
    _run(
        "import sys; from genood.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = {'torch', 'matplotlib', 'numpy'} & set(sys.modules)\n"
        "assert not heavy, heavy"
    )


def test_py_typed_is_shipped() -> None:
    import tomllib

    assert (ROOT / "genood" / "py.typed").is_file()
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "py.typed" in config["tool"]["setuptools"]["package-data"]["genood"]
