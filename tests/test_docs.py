"""README.md and docs/: the README's size, and every link pointing at a file in the repository."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)\s]+)\)")


def test_readme_is_at_most_10_kb() -> None:
    assert (ROOT / "README.md").stat().st_size <= 10 * 1024


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_links_point_at_files_in_the_repository(page: Path) -> None:
    links = LINK.findall(page.read_text())
    for link in links:
        assert "://" not in link, f"{page.name} links outside the repository: {link}"
        target = (page.parent / link.split("#", 1)[0]).resolve()
        assert target.is_relative_to(ROOT), f"{page.name}: {link} leaves the repository"
        assert target.exists(), f"{page.name}: {link} does not exist"


def test_readme_links_every_docs_page() -> None:
    readme = (ROOT / "README.md").read_text()
    for page in PAGES[1:]:
        assert f"docs/{page.name}" in readme, f"README does not link docs/{page.name}"


def test_no_page_points_at_a_file_outside_the_repository() -> None:
    for page in PAGES:
        assert "ARCHITECTURE.md" not in page.read_text(), f"{page.name} cites ARCHITECTURE.md"
