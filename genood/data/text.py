"""The text side of the data layer: text corpora as fixed-length byte arrays, split and cached.

Specs (:func:`genood.data.load` passes them here):

* ``text:NAME[:SPLIT]``: a named corpus (:mod:`genood.data.text_sources`): ``fortunes-en``,
  ``fortunes-de``, ``fortunes-it``, ``fortunes-es``, ``fortunes-br``, ``python-code``,
  ``repeat-char``, ``repeat-word``; splits ``train``, ``test`` (the default) and ``all``;
* ``textfile:PATH``: a user's UTF-8 text file (texts separated by ``%`` lines, else by blank
  lines), every text (split ``all``).

**Encoding.** One sample is one text (one fortune, one block of code), encoded as UTF-8 bytes and
*truncated* to its first :data:`SEQ_LEN` = 128 bytes (no windowing: a longer text contributes
its beginning only; the cut may fall inside a multi-byte character, which a byte-level model
does not mind). A sample is a uint8 array of shape ``(1, 1, L)`` (an "image" of one row, so that
the image pipeline's batching, training and scoring carry text unchanged), the bytes followed by
zeros. Byte 0 never occurs in a text (the sources remove NULs), so the first 0 is the **end
marker** of a text shorter than ``L`` and the zeros after it are **padding**: a model scores the
text's bytes and its end marker, never the padding (:mod:`genood.models.bytelm`). The length of a
sample is its count of non-zero bytes (:func:`lengths`).

**Splits.** A corpus's texts are deduplicated (first occurrence kept), then put in the order of a
seeded permutation (seed :data:`SPLIT_SEED`); the first :data:`TEST_FRACTION` of them (at least
one) are ``test``, the rest ``train``. The same texts always land in the same split, and a
``limit`` takes a prefix of the shuffled order.

**Cache.** The encoded arrays live in ``$GENOOD_CACHE/datasets/text-NAME/`` (``SPLIT-L128-*.npy``
with a ``.json`` manifest: the sources and their sha256, text counts, the arrays' sha256), written
atomically and checked against the manifest's sha256 when read back; a mismatch says to delete
the folder. Raw packages stay in ``$GENOOD_CACHE/downloads/text-NAME/``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np

from genood.data.cache import CacheEntry, array_sha256
from genood.data.errors import DataNotFoundError
from genood.data.imageset import ImageSet
from genood.data.text_sources import TextSourceError, corpora, text_file

SEQ_LEN = 128
SPLIT_SEED = 0
TEST_FRACTION = 0.1
SPLITS = ("train", "test", "all")
ENCODING = (
    "UTF-8 bytes, first {L} of each text, then byte 0 as end marker and zero padding "
    "(shape (1, 1, {L}))"
)


def encode(texts: list[str], length: int = SEQ_LEN) -> np.ndarray:
    """uint8 ``(N, 1, 1, length)``: each text's first ``length`` UTF-8 bytes, zero-padded.

    Raises:
        ValueError: an empty text, or one holding a NUL character (it would read as its end).
    """
    out = np.zeros((len(texts), 1, 1, length), dtype=np.uint8)
    for i, text in enumerate(texts):
        raw = text.encode("utf-8")[:length]
        if not raw or 0 in raw:
            raise ValueError(
                f"text {i} is empty or holds a NUL character, which the encoding reserves as "
                "its end marker; clean it with genood.data.text_sources.clean"
            )
        out[i, 0, 0, : len(raw)] = np.frombuffer(raw, dtype=np.uint8)
    return out


def lengths(array: np.ndarray) -> np.ndarray:
    """Bytes of text per sample (its non-zero bytes), int64 ``(N,)``."""
    return (np.asarray(array).reshape(len(array), -1) != 0).sum(axis=1).astype(np.int64)


def decode(sample: np.ndarray) -> str:
    """The text of one encoded sample (invalid UTF-8 of a cut character is replaced)."""
    raw = np.asarray(sample, dtype=np.uint8).reshape(-1).tobytes()
    return raw.split(b"\0", 1)[0].decode("utf-8", errors="replace")


def split_texts(texts: list[str], split: str, seed: int = SPLIT_SEED) -> list[str]:
    """Deduplicate and split ``texts`` (see the module doc); ``split`` in :data:`SPLITS`."""
    unique = list(dict.fromkeys(texts))
    order = np.random.default_rng(seed).permutation(len(unique))
    shuffled = [unique[i] for i in order]
    n_test = max(1, round(TEST_FRACTION * len(unique))) if unique else 0
    if split == "test":
        return shuffled[:n_test]
    if split == "train":
        return shuffled[n_test:]
    return shuffled


def parse_text_spec(rest: str) -> tuple[str, str]:
    """``"fortunes-en:train"`` -> ``("fortunes-en", "train")``; the split defaults to test."""
    name, _, split = rest.partition(":")
    split = split or "test"
    known = corpora()
    if name not in known:
        raise ValueError(
            f"unknown text corpus {name!r}; known: {', '.join(known)} (text:NAME[:SPLIT]), or "
            "your own file as textfile:PATH"
        )
    if split not in SPLITS:
        raise ValueError(f"text:{name} has no split {split!r}; its splits are {', '.join(SPLITS)}")
    return name, split


def load_text(
    kind: str,
    rest: str,
    data_dir: str | Path | None = None,
    limit: int | None = None,
    progress: bool = True,
    length: int = SEQ_LEN,
) -> ImageSet:
    """Load ``text:NAME[:SPLIT]`` or ``textfile:PATH`` as an :class:`ImageSet` of byte rows.

    Raises:
        DataNotFoundError: a corpus's source is unreachable (the message says how to provide it).
        ValueError: an unknown corpus or split, or an empty corpus.
    """
    if kind == "textfile":
        path = Path(rest).expanduser()
        if not path.is_absolute() and not path.exists() and data_dir:
            path = Path(data_dir) / path
        try:
            texts, provenance = text_file(path.resolve())
        except TextSourceError as error:
            raise DataNotFoundError(
                f"textfile:{rest}", [str(error)], "give an existing file"
            ) from None
        images = _encode_nonempty(split_texts(texts, "all"), length, f"textfile:{path}")
        images = images[:limit] if limit is not None else images
        spec = f"textfile:{path.resolve()}"
        return _as_set(images, spec, "textfile", str(path.resolve()), str(path))
    name, split = parse_text_spec(rest)
    entry = CacheEntry(f"text-{name}", f"{split}-L{length}")
    if entry.exists():
        images, _ = entry.load()
        if array_sha256(images) != entry.meta().get("images_sha256"):
            raise ValueError(
                f"cache entry {entry.images_path} does not match its manifest's sha256; delete "
                f"{entry.folder} and load again"
            )
        source = f"cache {entry.folder}"
    else:
        images, provenance = _build(name, split, length, progress)
        entry.write(images, np.full(len(images), -1, dtype=np.int64), provenance)
        source = str(provenance.get("source", name))
    images = images[:limit] if limit is not None else images
    return _as_set(np.asarray(images), f"text:{name}:{split}", f"text:{name}", split, source)


def _build(name: str, split: str, length: int, progress: bool) -> tuple[np.ndarray, dict]:
    try:
        texts, provenance = corpora()[name](progress)
    except TextSourceError as error:
        raise DataNotFoundError(
            f"text:{name}", [str(error)], "or train and score on your own texts: textfile:PATH"
        ) from None
    chosen = split_texts(texts, split)
    images = _encode_nonempty(chosen, length, f"text:{name}:{split}")
    if progress:
        print(
            f"text:{name}:{split}: {len(images)} texts from {provenance['source']}", file=sys.stderr
        )
    manifest: dict[str, Any] = {
        **provenance,
        "texts_read": len(texts),
        "texts_unique": len(dict.fromkeys(texts)),
        "texts_in_split": len(images),
        "split_seed": SPLIT_SEED,
        "test_fraction": TEST_FRACTION,
        "encoding": ENCODING.format(L=length),
        "truncated": int(sum(len(t.encode("utf-8")) > length for t in chosen)),
    }
    return images, manifest


def _encode_nonempty(texts: list[str], length: int, what: str) -> np.ndarray:
    if not texts:
        raise ValueError(f"{what} holds no text; check the file or choose another split")
    return encode(texts, length)


def _as_set(images: np.ndarray, spec: str, name: str, split: str, source: str) -> ImageSet:
    labels = np.full(len(images), -1, dtype=np.int64)
    return ImageSet(images, labels, spec, name, split, (), source)
