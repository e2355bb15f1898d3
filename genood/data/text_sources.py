"""Where the text corpora come from: Debian's fortune packages, Python's own source, generators.

Each corpus is a function returning ``(texts, provenance)``: the list of texts (one sample each,
in a deterministic order, duplicates kept: :mod:`genood.data.text` deduplicates) and a JSON-able
record of where they came from (package file names and their sha256, file counts). The corpora:

* ``fortunes-en``: Debian's ``fortunes-min`` and ``fortunes`` (English); ``fortunes-de``,
  ``fortunes-it``, ``fortunes-es``, ``fortunes-br`` (Portuguese): each package fetched with
  ``apt-get download`` and unpacked with ``dpkg -x`` (no root; :class:`~genood.data.sources.
  AptPackage`'s client, which refreshes empty package lists once), its raw files kept in
  ``$GENOOD_CACHE/downloads/text-<corpus>/``. A fortune file is a list of texts separated by lines
  holding only ``%``. Left out: the ``.dat`` index files, the ``.u8`` and other symbolic links
  (a package's links into another language's folder), and the offensive sections (``off/``
  folders, ROT13-encoded in some packages): they are not decoded, not read at all. Debian has no
  French fortune package (``fortunes-fr`` is not in its archive), hence no ``fortunes-fr``.
* ``python-code``: the ``.py`` files at the top of this interpreter's standard library
  (``sysconfig.get_paths()["stdlib"]``, no download; it differs between Python versions, which
  the provenance records); one text = one block of code between blank lines.
* ``repeat-char``, ``repeat-word``: generated degenerate texts, one character (a letter, digit,
  space or punctuation mark) or one common English word repeated, of seeded random lengths.

Every file is read as UTF-8, or as Latin-1 where it is not valid UTF-8 (older fortune files),
then written back as UTF-8 by the encoder; line ends become ``\\n``; overstrike sequences
(``X<backspace>X``, bold in old English fortunes) are reduced to the character; NUL characters
are removed (the encoding uses byte 0 as its end marker). Errors name the fix: a missing
``apt-get``/``dpkg`` or an unreachable package archive raises :class:`TextSourceError` saying
how to provide the files instead (``textfile:PATH``).
"""

from __future__ import annotations

import functools
import random
import re
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from genood.data.cache import downloads_dir, sha256_file
from genood.data.sources import AptPackage, SourceError

Corpus = tuple[list[str], dict[str, Any]]

FORTUNE_ROOT = "usr/share/games/fortunes"
_SEPARATOR = re.compile(r"\n%[ \t]*\n")


class TextSourceError(FileNotFoundError):
    """A text corpus could not be provided; the message says why and how to provide it."""


@dataclass(frozen=True)
class FortuneCorpus:
    """Fortune texts of one language, from Debian packages.

    Attributes:
        packages: the packages, in order.
        folder: the folder under ``usr/share/games/fortunes`` holding the files (``""``: the
            top level, whose regular files are English).
        language: for descriptions.
        only: take only these file names (empty: every fortune file of the folder).
    """

    packages: tuple[str, ...]
    folder: str
    language: str
    only: tuple[str, ...] = ()


FORTUNES: dict[str, FortuneCorpus] = {
    "fortunes-en": FortuneCorpus(("fortunes-min", "fortunes"), "", "English"),
    "fortunes-de": FortuneCorpus(("fortunes-de",), "de", "German"),
    "fortunes-it": FortuneCorpus(("fortunes-it",), "it", "Italian"),
    "fortunes-es": FortuneCorpus(("fortunes-es",), "es", "Spanish"),
    "fortunes-br": FortuneCorpus(("fortunes-br",), "", "Portuguese (Brazil)", ("brasil",)),
}

WORDS = (
    "the", "and", "that", "have", "for", "not", "with", "you", "this", "but", "his", "from",
    "they", "say", "her", "she", "will", "one", "all", "would", "there", "their", "what", "about",
    "which", "when", "make", "can", "like", "time", "just", "him", "know", "take", "people",
    "into", "year", "your", "good", "some", "could", "them", "see", "other", "than", "then",
    "now", "look", "only", "come", "its", "over", "think", "also", "back", "after", "use",
    "two", "how", "our", "work", "first", "well", "way", "even", "new", "want", "because",
)  # fmt: skip
PUNCTUATION = " .,-*=#!?"


def clean(text: str) -> str:
    """Normalise line ends, drop overstrikes and NULs, strip surrounding blank space."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = re.sub(".\x08", "", text).replace("\x08", "").replace("\x00", "")
    return text.strip()


def decode_bytes(raw: bytes) -> str:
    """UTF-8, else Latin-1 (every byte string is valid Latin-1)."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def split_fortunes(text: str) -> list[str]:
    """The texts of a fortune file (separated by lines holding only ``%``), cleaned, non-empty."""
    parts = _SEPARATOR.split("\n" + text.replace("\r\n", "\n") + "\n")
    return [t for t in (clean(p.strip("%")) for p in parts) if t]


def fortune_files(root: Path, folder: str) -> list[Path]:
    """Regular fortune files of ``root/usr/share/games/fortunes/folder``, sorted.

    Only the folder's own files: no subfolder (``off/`` is offensive, ROT13 in some packages;
    other languages' folders), no ``.dat`` index, no symbolic link (``.u8`` aliases, links
    into other packages' folders).
    """
    base = root / FORTUNE_ROOT / folder
    if not base.is_dir():
        return []
    return sorted(
        p
        for p in base.iterdir()
        if p.is_file() and not p.is_symlink() and p.suffix not in (".dat", ".u8")
    )


def unpack_package(package: str, dest: Path, progress: bool) -> tuple[Path, str]:
    """``apt-get download`` + ``dpkg -x`` of ``package`` into ``dest/root``; ``(root, deb name)``.

    The .deb is kept in ``dest`` (it is the raw file, with its sha256 in the provenance).
    """
    debs = sorted(dest.glob(f"{package}_*.deb"))
    if not debs:
        apt = AptPackage(package, FORTUNE_ROOT, ())
        apt_get, dpkg = shutil.which("apt-get"), shutil.which("dpkg")
        if apt_get is None or dpkg is None:
            raise TextSourceError(
                f"the Debian package {package} is needed and apt-get/dpkg are not on PATH; "
                f"put its .deb in {dest}, or give your own texts as textfile:PATH"
            )
        dest.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=".apt-", dir=dest) as scratch:
            try:
                result = apt._download(apt_get, Path(scratch), progress)
            except SourceError as error:
                raise TextSourceError(f"{error}; or give your own texts as textfile:PATH") from None
            got = sorted(Path(scratch).glob("*.deb"))
            if result.returncode != 0 or len(got) != 1:
                tail = (result.stderr or result.stdout or "").strip().splitlines()
                raise TextSourceError(
                    f"apt-get download {package} failed ({tail[-1] if tail else result.returncode})"
                    f"; check `apt-cache policy {package}` (run apt-get update as root if the "
                    f"package lists are empty), put the .deb in {dest}, or give your own texts "
                    "as textfile:PATH"
                )
            shutil.move(str(got[0]), dest / got[0].name)
        debs = sorted(dest.glob(f"{package}_*.deb"))
    deb = debs[-1]
    root = dest / "root" / package
    if not (root / FORTUNE_ROOT).is_dir():
        if root.exists():
            shutil.rmtree(root)
        root.mkdir(parents=True)
        dpkg = shutil.which("dpkg")
        if dpkg is None:
            raise TextSourceError(f"dpkg is not on PATH: it is needed to unpack {deb}")
        done = subprocess.run([dpkg, "-x", str(deb), str(root)], capture_output=True, text=True)
        if done.returncode != 0:
            raise TextSourceError(
                f"dpkg -x {deb} failed: {done.stderr.strip()}; delete {deb} and load again"
            )
    return root, deb.name


def fortunes(name: str, progress: bool = True) -> Corpus:
    """The texts of fortune corpus ``name`` (see :data:`FORTUNES`) with their provenance."""
    corpus = FORTUNES[name]
    dest = downloads_dir(f"text-{name}")
    texts: list[str] = []
    packages: list[dict[str, Any]] = []
    for package in corpus.packages:
        root, deb = unpack_package(package, dest, progress)
        files = [
            p
            for p in fortune_files(root, corpus.folder)
            if not corpus.only or p.name in corpus.only
        ]
        if not files:
            raise TextSourceError(
                f"{deb} has no fortune files in {FORTUNE_ROOT}/{corpus.folder}; delete {dest} "
                "and load again"
            )
        for path in files:
            texts += split_fortunes(decode_bytes(path.read_bytes()))
        packages.append(
            {
                "deb": deb,
                "sha256": sha256_file(dest / deb),
                "files": [p.name for p in files],
            }
        )
    return texts, {
        "source": "Debian packages " + ", ".join(corpus.packages),
        "language": corpus.language,
        "packages": packages,
        "left_out": ".dat index files, symbolic links, subfolders (off/: offensive, ROT13)",
    }


def python_code(progress: bool = True) -> Corpus:
    """Blocks of code (between blank lines) of the standard library's top-level ``.py`` files."""
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    files = sorted(stdlib.glob("*.py"))
    if not files:
        raise TextSourceError(
            f"no .py files in the standard library folder {stdlib}; give code as textfile:PATH"
        )
    texts: list[str] = []
    for path in files:
        source = decode_bytes(path.read_bytes()).replace("\r\n", "\n")
        texts += [t for t in (clean(b) for b in re.split(r"\n[ \t]*\n", source)) if t]
    version = ".".join(map(str, sys.version_info[:3]))
    return texts, {
        "source": f"Python {version} standard library, {stdlib}",
        "files": len(files),
        "note": "differs between Python versions",
    }


def repeat_char(count: int = 2000, seed: int = 0, length: int = 128) -> Corpus:
    """``count`` texts of one character repeated, seeded random lengths in ``[8, length]``."""
    rng = random.Random(seed)
    alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789" + PUNCTUATION
    texts = [rng.choice(alphabet) * rng.randint(8, length) for _ in range(count)]
    return texts, {"source": f"generated: one character repeated, seed {seed}"}


def repeat_word(count: int = 2000, seed: int = 0, length: int = 128) -> Corpus:
    """``count`` texts of one common English word repeated (space-separated)."""
    rng = random.Random(seed)
    texts = []
    for _ in range(count):
        word = rng.choice(WORDS)
        repeats = max(1, rng.randint(8, length) // (len(word) + 1))
        texts.append(" ".join([word] * repeats))
    return texts, {"source": f"generated: one word of {list(WORDS)} repeated, seed {seed}"}


def text_file(path: Path) -> Corpus:
    """A user's file: fortune-style (``%`` lines) when it has them, else blank-line paragraphs."""
    if not path.is_file():
        raise TextSourceError(f"textfile:{path}: no such file; give the path of a UTF-8 text file")
    text = decode_bytes(path.read_bytes())
    if _SEPARATOR.search("\n" + text + "\n"):
        texts = split_fortunes(text)
    else:
        texts = [t for t in (clean(b) for b in re.split(r"\n[ \t]*\n", text)) if t]
    return texts, {"source": str(path), "sha256": sha256_file(path)}


def _fortunes_of(name: str, progress: bool) -> Corpus:
    return fortunes(name, progress)


def corpora() -> dict[str, Callable[[bool], Corpus]]:
    """Named corpora (``text:NAME``): name -> ``corpus(progress)``."""
    named: dict[str, Callable[[bool], Corpus]] = {
        name: functools.partial(_fortunes_of, name) for name in FORTUNES
    }
    named["python-code"] = python_code
    named["repeat-char"] = lambda progress: repeat_char()
    named["repeat-word"] = lambda progress: repeat_word()
    return named
