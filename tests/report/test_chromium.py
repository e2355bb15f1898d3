"""Open report.html in headless Chromium at a laptop's width: every figure decodes, the verdict
table is there, nothing runs off to the right (no horizontal scrolling, the probe table fits),
and a screenshot is taken at that width.

Skipped when neither ``chromium`` nor ``chromium-browser`` is on PATH (CI installs Debian's
``chromium`` package first).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from genood.report import render

BROWSER = shutil.which("chromium") or shutil.which("chromium-browser")

# Runs after every image has loaded or failed; writes what it saw into the DOM that
# --dump-dom prints.
PROBE = """<script>
window.addEventListener("load", () => {
  const images = Array.from(document.images);
  const loaded = images.filter((img) => img.complete && img.naturalWidth > 0).length;
  const rows = document.querySelectorAll("#verdict-table tbody tr").length;
  const page = document.documentElement;
  const overflow = page.scrollWidth - page.clientWidth;
  const wrap = document.querySelector("#probe-table").parentElement;
  const probeOverflow = wrap.scrollWidth - wrap.clientWidth;
  const probe = document.createElement("div");
  probe.id = "probe";
  probe.textContent = `images=${images.length} loaded=${loaded} verdict_rows=${rows} ` +
    `width=${page.clientWidth} overflow=${overflow} probe_overflow=${probeOverflow}`;
  document.body.appendChild(probe);
});
</script>"""


LAPTOP = (1366, 768)
PROTOCOL_SETS = (
    "probe:noise:1x28x28", "probe:letters:1x28x28", "probe:vflip (fashion-mnist:test)",
    "probe:constant:1x28x28", "probe:font-digits:thin:1x28x28",
    "probe:font-digits:regular:1x28x28", "probe:font-digits:bold:1x28x28",
    "probe:uci-digits:1x28x28", "probe:rot90 (fashion-mnist:test)",
    "probe:inverted (fashion-mnist:test)", "probe:hflip (fashion-mnist:test)",
)  # fmt: skip
WIDEST_CELL = {
    "auroc": 0.912, "auroc_ci": [0.899, 0.925], "fpr95": 0.3, "tpr": 1.0,
    "group": "transformed", "role": "outside the goal", "in_goal": True,
}  # fmt: skip


def _chromium(tmp_path: Path, *arguments: str) -> subprocess.CompletedProcess:
    command = [
        BROWSER, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
        "--no-first-run", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--disable-dev-shm-usage", f"--user-data-dir={tmp_path / 'profile'}",
        "--hide-scrollbars", f"--window-size={LAPTOP[0]},{LAPTOP[1]}",
        "--virtual-time-budget=5000", *arguments,
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done


@pytest.mark.skipif(BROWSER is None, reason="chromium is not installed")
def test_report_renders_in_headless_chromium_without_horizontal_overflow(
    copy_run: Path, tmp_path: Path
) -> None:
    # The probe table at its widest, as genood reproduce writes it: the protocol's eleven sets,
    # each cell with its AUROC, interval, share rejected and FPR@95.
    results = json.loads((copy_run / "results.json").read_text())
    for row in results["detection"].values():
        row["probes"] = {label: dict(WIDEST_CELL) for label in PROTOCOL_SETS}
    (copy_run / "results.json").write_text(json.dumps(results))
    report = render(copy_run)
    probed = report.with_name("probed.html")
    probed.write_text(report.read_text().replace("</body>", PROBE + "</body>"))
    done = _chromium(tmp_path, "--dump-dom", probed.as_uri())
    pattern = (
        r"images=(\d+) loaded=(\d+) verdict_rows=(\d+) width=(\d+) overflow=(-?\d+) "
        r"probe_overflow=(-?\d+)"
    )
    match = re.search(pattern, done.stdout)
    assert match, f"probe missing from the dumped DOM: {done.stdout[-1000:]}"
    images, loaded, rows, width, overflow, probe_overflow = map(int, match.groups())
    assert images == 4 and loaded == images
    assert rows == 3
    assert width == LAPTOP[0]
    assert overflow <= 0, f"the page scrolls sideways by {overflow} px at {width} px"
    assert probe_overflow <= 0, f"the probe table is {probe_overflow} px too wide"

    shot = tmp_path / "report.png"
    _chromium(tmp_path, f"--screenshot={shot}", report.as_uri())
    from PIL import Image

    with Image.open(shot) as image:
        assert image.size == LAPTOP
