"""The GPU tests reuse the training tests' tiny data sets and configs."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1] / "train"))
