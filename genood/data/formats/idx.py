"""IDX files (MNIST, FashionMNIST): ``*-idx3-ubyte`` images and ``*-idx1-ubyte`` labels.

The format (LeCun et al., http://yann.lecun.com/exdb/mnist/): a 4-byte big-endian magic number
``0x0000TTDD`` (two zero bytes, the element type ``TT``, the number of dimensions ``DD``), then
``DD`` big-endian uint32 sizes, then the elements in C order, big-endian. Files are often gzipped.
"""

from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path

import numpy as np

from genood.data.errors import DataFormatError

# Element type byte -> numpy dtype (big-endian, as the format stores them).
IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def read_bytes(path: Path) -> bytes:
    """The file's bytes, gunzipped when it starts with the gzip magic; corrupt gzip is an error."""
    path = Path(path)
    raw = path.read_bytes()
    if raw[:2] != b"\x1f\x8b":
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as error:
        raise DataFormatError(
            f"{path} is a truncated or corrupt gzip file ({error}); delete it and fetch it again"
        ) from error


def magic_number(dtype_code: int, ndim: int) -> int:
    """The IDX magic number for an element type and a number of dimensions."""
    return (dtype_code << 8) | ndim


def parse_idx(data: bytes, where: str, ndim: int | None = None) -> np.ndarray:
    """Decode IDX bytes (already gunzipped) into an array in native byte order.

    Args:
        data: the IDX bytes.
        where: the file name, for error messages.
        ndim: the expected number of dimensions (3 for images, 1 for labels); None: any.
    """
    if len(data) < 4:
        raise DataFormatError(f"{where}: only {len(data)} bytes, too short for an IDX header")
    (magic,) = struct.unpack(">I", data[:4])
    dtype_code, dims = (magic >> 8) & 0xFF, magic & 0xFF
    expected = "" if ndim is None else f" {magic_number(0x08, ndim):#010x} (uint8, {ndim}-D)"
    if magic >> 16 != 0 or dtype_code not in IDX_DTYPES or (ndim is not None and dims != ndim):
        raise DataFormatError(
            f"{where}: wrong IDX magic number {magic:#010x}; expected{expected or ' 0x0000TTDD'}"
            " (is this an IDX file, and the images/labels file you meant?)"
        )
    header = 4 + 4 * dims
    if len(data) < header:
        raise DataFormatError(f"{where}: truncated IDX header ({len(data)} bytes)")
    shape = struct.unpack(f">{dims}I", data[4:header])
    dtype = IDX_DTYPES[dtype_code]
    expected_bytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(data) - header != expected_bytes:
        state = (
            "truncated" if len(data) - header < expected_bytes else "longer than its header says"
        )
        raise DataFormatError(
            f"{where}: {state}: the header promises shape {tuple(shape)} "
            f"({expected_bytes} bytes of data) but the file holds {len(data) - header}"
        )
    array = np.frombuffer(data, dtype=dtype, count=expected_bytes // dtype.itemsize, offset=header)
    return array.reshape(shape).astype(dtype.newbyteorder("="))  # a writable copy


def read_idx(path: Path, ndim: int | None = None) -> np.ndarray:
    """Read an IDX file, gzipped or not; see :func:`parse_idx`."""
    path = Path(path)
    return parse_idx(read_bytes(path), str(path), ndim)


def read_idx_images_labels(images_path: Path, labels_path: Path) -> tuple[np.ndarray, np.ndarray]:
    """An IDX image file and its label file as ``(N, 1, H, W)`` uint8 and ``(N,)`` int64."""
    images = read_idx(images_path, ndim=3)
    labels = read_idx(labels_path, ndim=1)
    if images.dtype != np.uint8 or labels.dtype != np.uint8:
        raise DataFormatError(f"{images_path}, {labels_path}: expected unsigned-byte IDX files")
    if len(images) != len(labels):
        raise DataFormatError(
            f"{images_path} holds {len(images)} images but {labels_path} holds {len(labels)} labels"
        )
    return images[:, None], labels.astype(np.int64)


def write_idx(path: Path, array: np.ndarray, compress: bool | None = None) -> None:
    """Write ``array`` as an IDX file (gzipped, mtime 0, when the name ends in ``.gz``)."""
    path = Path(path)
    codes = {dtype: code for code, dtype in IDX_DTYPES.items()}
    big_endian = array.dtype.newbyteorder(">") if array.dtype.itemsize > 1 else array.dtype
    if big_endian not in codes:
        raise ValueError(f"IDX cannot store dtype {array.dtype}")
    header = struct.pack(">I", magic_number(codes[big_endian], array.ndim))
    header += struct.pack(f">{array.ndim}I", *array.shape)
    body = header + np.ascontiguousarray(array, dtype=big_endian).tobytes()
    if path.name.endswith(".gz") if compress is None else compress:
        body = gzip.compress(body, mtime=0)
    path.write_bytes(body)
