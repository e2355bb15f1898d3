"""Open report.html in headless Chromium: every figure decodes, the verdict table is there.

Skipped when neither ``chromium`` nor ``chromium-browser`` is on PATH (CI installs Debian's
``chromium`` package first).
"""

from __future__ import annotations

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
  const probe = document.createElement("div");
  probe.id = "probe";
  probe.textContent = `images=${images.length} loaded=${loaded} verdict_rows=${rows}`;
  document.body.appendChild(probe);
});
</script>"""


@pytest.mark.skipif(BROWSER is None, reason="chromium is not installed")
def test_report_renders_in_headless_chromium(copy_run: Path, tmp_path: Path) -> None:
    report = render(copy_run)
    probed = report.with_name("probed.html")
    probed.write_text(report.read_text().replace("</body>", PROBE + "</body>"))
    command = [
        BROWSER, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
        "--no-first-run", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--disable-dev-shm-usage", f"--user-data-dir={tmp_path / 'profile'}",
        "--virtual-time-budget=5000", "--dump-dom", probed.as_uri(),
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    match = re.search(r"images=(\d+) loaded=(\d+) verdict_rows=(\d+)", done.stdout)
    assert match, f"probe missing from the dumped DOM: {done.stdout[-1000:]}"
    images, loaded, rows = map(int, match.groups())
    assert images == 4 and loaded == images
    assert rows == 3
