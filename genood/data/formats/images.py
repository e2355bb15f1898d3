"""Image files through Pillow: image folders (one class per subfolder, optional) and CelebA.

An image folder is either flat (every image unlabeled, label -1) or one subfolder per class
(labels are the indices of the sorted subfolder names, as in torchvision's ``ImageFolder``).
All images must have one size and one channel count; grayscale images give ``C = 1``, colour
ones (RGB, palette, RGBA with alpha dropped) ``C = 3``. Hidden files (``.DS_Store``) are skipped;
any other file that is not a readable PNG/JPEG/... image is an error naming it, and so is an
image above Pillow's decompression-bomb limit (``Image.MAX_IMAGE_PIXELS``, about 89 megapixels)
or a folder whose decoded images would not fit in half of the machine's memory.
"""

from __future__ import annotations

import io
import warnings
import zipfile
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from genood.data.errors import DataFormatError
from genood.data.imageset import require_memory

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".ppm", ".pgm", ".webp"})
CELEBA_SPLITS = {"train": 0, "valid": 1, "test": 2}


def _pil():
    from PIL import Image, UnidentifiedImageError

    return Image, UnidentifiedImageError


def open_image(source: Path | bytes, where: str):
    """Open and fully decode an image with Pillow, as 8-bit ``L`` or ``RGB``."""
    image_module, unidentified = _pil()
    try:
        with warnings.catch_warnings():
            # Above MAX_IMAGE_PIXELS Pillow only warns; such an image is refused here too.
            warnings.simplefilter("error", image_module.DecompressionBombWarning)
            image = image_module.open(io.BytesIO(source) if isinstance(source, bytes) else source)
            image.load()
    except (image_module.DecompressionBombWarning, image_module.DecompressionBombError) as error:
        raise DataFormatError(
            f"{where} is too large to decode safely ({error}); image folders are for small "
            "images: resize it first"
        ) from error
    except (unidentified, OSError, SyntaxError, ValueError) as error:
        raise DataFormatError(
            f"{where} is not an image Pillow can read ({error}); an image folder may hold only "
            "PNG/JPEG images (and hidden files)"
        ) from error
    if image.mode in ("L", "RGB"):
        return image
    if image.mode in ("1", "LA", "La"):
        return image.convert("L")
    if image.mode in ("P", "PA", "RGBA", "RGBa", "RGBX", "CMYK", "YCbCr", "LAB", "HSV"):
        return image.convert("RGB")
    raise DataFormatError(f"{where}: image mode {image.mode!r} is not 8-bit grayscale or colour")


def to_array(image) -> np.ndarray:
    """A Pillow ``L``/``RGB`` image as a ``(C, H, W)`` uint8 array."""
    array = np.asarray(image, dtype=np.uint8)
    return array[None] if array.ndim == 2 else np.ascontiguousarray(array.transpose(2, 0, 1))


def list_image_folder(root: Path) -> tuple[list[Path], list[int], list[str]]:
    """Image files of a folder in a fixed order, their labels and the class names."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root} is not a folder (imagefolder:PATH needs a folder)")
    visible = sorted(p for p in root.iterdir() if not p.name.startswith("."))
    classes = [p.name for p in visible if p.is_dir()]
    loose = [p for p in visible if not p.is_dir()]
    if classes and loose:
        raise DataFormatError(
            f"{root} mixes files ({loose[0].name}...) with class subfolders ({classes[0]}...); "
            "put every image in a class subfolder, or use a flat folder of images"
        )
    if not classes:
        files, labels = loose, [-1] * len(loose)
    else:
        files, labels = [], []
        for index, name in enumerate(classes):
            found = sorted(
                p
                for p in (root / name).rglob("*")
                if p.is_file()
                and not any(part.startswith(".") for part in p.relative_to(root).parts)
            )
            files += found
            labels += [index] * len(found)
    for file in files:
        if file.suffix.lower() not in IMAGE_SUFFIXES:
            raise DataFormatError(
                f"{file} is not an image file (expected one of {sorted(IMAGE_SUFFIXES)}); "
                "remove it from the image folder"
            )
    if not files:
        raise DataFormatError(f"{root} holds no images")
    return files, labels, classes


def stack_images(
    sources: Iterable[tuple[str, Callable[[], np.ndarray]]], count: int, progress: bool, what: str
) -> np.ndarray:
    """Decode ``count`` images into one ``(N, C, H, W)`` array; sizes and channels must agree."""
    from tqdm.auto import tqdm

    out: np.ndarray | None = None
    first = ""
    for i, (where, decode) in enumerate(
        tqdm(sources, total=count, desc=what, disable=not progress)
    ):
        array = decode()
        if out is None:
            require_memory(count * array.size, f"{what}: {count} images of {array.shape}")
            out, first = np.empty((count, *array.shape), np.uint8), where
        elif array.shape != out.shape[1:]:
            c, h, w = out.shape[1:]
            raise DataFormatError(
                f"images differ in size or channels: {first} is {c}x{h}x{w} (CxHxW) but {where} "
                f"is {'x'.join(map(str, array.shape))}; resize them to one size first"
            )
        out[i] = array
    assert out is not None
    return out


def read_image_folder(
    root: Path, progress: bool = True
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Images ``(N, C, H, W)`` uint8, labels ``(N,)`` int64 and class names of an image folder."""
    files, labels, classes = list_image_folder(root)
    sources = ((str(f), lambda f=f: to_array(open_image(f, str(f)))) for f in files)
    images = stack_images(sources, len(files), progress, f"decoding {Path(root).name}")
    return images, np.asarray(labels, np.int64), classes


# ----------------------------------------------------------------------------- CelebA
def center_crop_resize(image, crop: int, size: int):
    """Centre-crop to ``crop x crop`` (when the image is large enough), then resize bilinearly."""
    image_module, _ = _pil()
    width, height = image.size
    if crop and crop <= min(width, height):
        left, top = (width - crop) // 2, (height - crop) // 2
        image = image.crop((left, top, left + crop, top + crop))
    if image.size != (size, size):
        image = image.resize((size, size), image_module.BILINEAR)
    return image


def read_celeba_partition(path: Path) -> dict[str, int]:
    """``list_eval_partition.txt``: one ``000001.jpg 0`` line per image (0 train/1 valid/2 test)."""
    partition: dict[str, int] = {}
    for number, line in enumerate(Path(path).read_text().splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 2 or parts[1] not in ("0", "1", "2"):
            raise DataFormatError(
                f"{path}:{number}: expected 'FILE.jpg 0|1|2' (train/valid/test), found {line!r}"
            )
        partition[parts[0]] = int(parts[1])
    return partition


def read_celeba(
    images: Path, partition_file: Path, split: str, crop: int, size: int, progress: bool = True
) -> np.ndarray:
    """The aligned CelebA images of one split, centre-cropped and resized: ``(N, 3, size, size)``.

    Args:
        images: the ``img_align_celeba/`` folder of JPEGs or ``img_align_celeba.zip``.
        partition_file: ``list_eval_partition.txt``.
        split: ``train``, ``valid`` or ``test``.
        crop: side of the centre crop (148 in RealNVP's and Glow's 32/64-pixel CelebA; 0: none).
        size: side of the output images.
    """
    images = Path(images)
    if split not in CELEBA_SPLITS:
        raise ValueError(f"CelebA has splits {list(CELEBA_SPLITS)}, not {split!r}")
    partition = read_celeba_partition(partition_file)
    names = sorted(name for name, code in partition.items() if code == CELEBA_SPLITS[split])
    if not names:
        raise DataFormatError(f"{partition_file} lists no image of split {split!r}")

    def decode(data: Path | bytes, where: str) -> np.ndarray:
        return to_array(center_crop_resize(open_image(data, where).convert("RGB"), crop, size))

    what = f"decoding CelebA {split}"
    if Path(images).is_dir():
        missing = [n for n in names[:1] + names[-1:] if not (Path(images) / n).is_file()]
        if missing:
            raise DataFormatError(f"{images}: missing {missing[0]} listed in {partition_file}")
        sources = (
            (str(images / n), lambda n=n: decode(images / n, str(images / n))) for n in names
        )
        return stack_images(sources, len(names), progress, what)
    try:
        with zipfile.ZipFile(images) as archive:
            members = {Path(m).name: m for m in archive.namelist() if not m.endswith("/")}
            absent = [n for n in names if n not in members]
            if absent:
                raise DataFormatError(f"{images}: no {absent[0]} (listed in {partition_file})")
            sources = (
                (f"{images}:{n}", lambda n=n: decode(archive.read(members[n]), f"{images}:{n}"))
                for n in names
            )
            return stack_images(sources, len(names), progress, what)
    except (zipfile.BadZipFile, EOFError, OSError) as error:
        raise DataFormatError(f"{images} is a truncated or corrupt zip file ({error})") from error
