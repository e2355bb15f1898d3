"""``general-patches``: a general-domain pool of natural-image crops, built offline from photographs
that two Debian packages ship.

Schirrmeister et al. (2020) score an input by the log-likelihood ratio of the in-distribution model
against a *general-domain* model trained on a broad pool of natural images (80 Million Tiny
Images); the ratio cancels the low-level part (smoothness, local pixel statistics) that dominates
every likelihood. Tiny Images is withdrawn and nothing like it is reachable offline, so genood cuts
its pool from the 24 photographs of two wallpaper packages (only photographs: the rendered and
abstract wallpapers, and those with logos or text, are left out):

* ``mate-backgrounds`` (1.26.0): the 12 photographs of ``usr/share/backgrounds/mate/nature``
  (flowers, leaves, grass, a ladybird, rain drops, wood, dunes, a storm over a road...);
* ``plasma-workspace-wallpapers`` (5.27.5): 12 photographic wallpapers, the largest size of each
  (a jetty, boats at dusk, a forest path, moss, fallen leaves, cups, a lake, a beach from above...).

Each file's sha256 is pinned (:data:`PHOTOS`); the packages are fetched with ``apt-get download``
and unpacked with ``dpkg -x`` (no root), or the photographs can be put by hand in
``GENOOD_DATA/general-patches/`` under the names in :data:`PHOTOS`. The *test* split is cut from
4 photographs that the *train* split never sees (2 of each package), so its loss measures how the
general model generalizes to unseen photographs, not to unseen crops of the same ones.

The crops (:func:`genood.data.formats.patches.read_patches`): square, side log-uniform from 28
source pixels to the photograph's short side, position uniform, resized with an antialiasing
filter; 60,000 train and 10,000 test images, seeded. ``general-patches`` is 28x28 grayscale (the
shape of FashionMNIST and MNIST), ``general-patches-rgb`` 32x32 RGB (the shape of CIFAR-10/SVHN).
Labels are the index of the source photograph in :data:`PHOTOS` (``classes`` names them).

None of genood's evaluation sets is in the pool: it holds no clothing, no handwritten or printed
digit, letter or glyph, no generated noise or constant image, and no flipped/rotated/inverted
FashionMNIST or MNIST; every source file is a photograph chosen by name and pinned by sha256.

The method, as confirmed in the authors' code (``boschresearch/hierarchical_anomaly_detection``,
read for this module; the paper's text itself was not in the search corpora):

* the general-domain set: ``create_tiny.py`` saves 24,415 random chunks of 64 consecutive
  Tiny Images (about 1.56 million 32x32 images); ``load_train_test_tiny`` splits them 80/20 in
  order, and makes them gray (``tiny_grey``) as ``0.2989 R + 0.5870 G + 0.1140 B``;
* MNIST and FashionMNIST are resized from 28 to 32 pixels (bilinear, ``rescale_to_32``);
* the in-distribution Glow is *fine-tuned* from the general model (``main.py``: pretrain on Tiny,
  then ``Finetune`` from ``tiny_model.th``), K = 32 steps per level, lr 5e-4, weight decay 5e-5;
* the score (``evaluate_without_noise``) is ``log p_fine(x) - log p_tiny(x)`` of the full
  likelihood (non-finite values set to -3e6), inputs shifted by half a bin instead of noise; a
  second score uses the last scale's term alone.

What genood does differently: a pool of 24 photographs cut into multi-scale crops (narrow next to
Tiny Images; the grayscale weights are the same luma, Pillow's ``L``: 0.299/0.587/0.114); 28x28
images padded to 32 by genood's configs, not resized; the in-distribution model trained from
scratch unless asked (``train.init_from`` fine-tunes it from the general run, as they do; the
ratio itself, :func:`genood.ood.ratio.check_same_architecture`, only asks for one architecture);
a 3x4x64 Glow of 2,400 steps, not K = 32 for up to 250 epochs; the ratio in bits/dim
(:mod:`genood.ood.ratio`: ``bpd(x) - bpd_general(x)``, theirs up to sign and the constant
``D log 2``) on genood's own dequantization; no last-scale-only score. Measured in
``docs/results.md`` ("Schirrmeister et al.").
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from genood.data.formats.patches import read_patches
from genood.data.registry import Dataset, Layout, register
from genood.data.sources import AptPackage

MATE_FOLDER = "usr/share/backgrounds/mate/nature"
PLASMA_FOLDER = "usr/share/wallpapers"
COUNTS = {"train": 60_000, "test": 10_000}
SEEDS = {"train": 0, "test": 1}


@dataclass(frozen=True)
class Photo:
    """One source photograph: the package shipping it, its file name (relative to the package's
    folder, and to the data folder), its pinned sha256 and the split that uses it."""

    package: str
    name: str
    sha256: str
    split: str

    @property
    def label(self) -> str:
        return self.name.split("/")[0].removesuffix(".jpg")


def _mate(name: str, sha256: str, split: str = "train") -> Photo:
    return Photo("mate-backgrounds", name, sha256, split)


def _plasma(theme: str, sha256: str, split: str = "train", size: str = "2560x1600") -> Photo:
    return Photo(
        "plasma-workspace-wallpapers", f"{theme}/contents/images/{size}.jpg", sha256, split
    )


PHOTOS: tuple[Photo, ...] = (
    _mate("Aqua.jpg", "5c30118205982da441bf7e6a1ada636a8a0be879408140b3148280c665ed6bce"),
    _mate("Blinds.jpg", "f7aac0dcc2e06d0491643e84df3da1d9db7c4610f58806a880d56e074799f600"),
    _mate("Dune.jpg", "8a67c2cb0be8c46b70c237311a4fa4d2b4ac7d39568135384787801fa5cc9a91"),
    _mate("FreshFlower.jpg", "972b0a0c4e5e3fa93f4f244fc84bc64b121a5eac3aaa5856f1308c1f38a02f8e"),
    _mate("Garden.jpg", "d3095ee09d425ef23d27155412136cf14fc3c9af76ca58b452f55e23da324e78"),
    _mate("GreenMeadow.jpg", "8fa0de0aa4089f7319c9fb7a6d006d4cab6023e8c8853731557cff53567b4832"),
    _mate(
        "LadyBird.jpg", "e35a9a4126ef969c90b29c038058c5a575a20eadd84106a37bf1fa9931e7b61d", "test"
    ),
    _mate("RainDrops.jpg", "3e4ea9671c28c90a86cf67b3db9daf18c4741587c596333a7529ca589aaa0c16"),
    _mate("Storm.jpg", "77ca53077831d3237f73393a91fc879158abc046d852941c26e90de336356957", "test"),
    _mate("TwoWings.jpg", "665e5abf8a5399070a91a9a8e455fe071e5b61697ff78fdeda4e9843ef545aeb"),
    _mate("Wood.jpg", "19c78500ac00a622e19907ab9cc7d06d46fe08c4a6142759a84195696150ec07"),
    _mate("YellowFlower.jpg", "254da96256acb7add685679775a04d1e4a5bc8cd13e5a5a3d61351ce198a5306"),
    _plasma("BytheWater", "c272434ef39f2abf1ed48a15a8910088020f3165329a5092f3940ec9464bc05f"),
    _plasma("ColdRipple", "05bef6722fc0ed81292cceb3ed026c38d17e510f3c84be7d68610c2b1a723c3f"),
    _plasma("ColorfulCups", "6e0f3a72feb5a4a9fec191b77e34874c3c69e2d93040deb3f07773e73385023d"),
    _plasma("DarkestHour", "8e3703fae3a3c217b1fc2b399b706cd3720584268d071ba153e4809daa55f1ce"),
    _plasma(
        "EveningGlow", "586682dcb362b9f620068f10138f87d0d3649939aef238adc5807cb951976a7a", "test"
    ),
    _plasma("FallenLeaf", "95603a6560c7e8d50e0e03b3f4adbe39c5258c72528e74e4ecaea1daf4e499de"),
    _plasma("Grey", "88c31d8944b7e6935d1b9a296654c692f0772cb512491713eb30a972a604c0ed"),
    _plasma("Kite", "bdca288ce296a981e80659c021cf707caddc702c0c8d4247e60bd618476d47f8"),
    _plasma("OneStandsOut", "cb507baf1dafdcae362264f3aba9483ed4be5f6c9fdd770f0ec0920c6d9e80fd"),
    _plasma("Path", "7477457d7f17b736259f1b021864778ad4ba802cf3214e6728181ff29126bba8", "test"),
    _plasma("summer_1am", "c868b50789591dd42910153c768053f1ba0a98cb36bbfc2b7a96a1045d0477f8"),
    _plasma(
        "Volna",
        "abc30b4fc6f6a83b6156e6b59ac283c067de40af820aafac8ac7c4fd83a9607c",
        size="5120x2880",
    ),
)

FALLBACKS = (
    AptPackage(
        "mate-backgrounds",
        MATE_FOLDER,
        tuple(p.name for p in PHOTOS if p.package == "mate-backgrounds"),
    ),
    AptPackage(
        "plasma-workspace-wallpapers",
        PLASMA_FOLDER,
        tuple(p.name for p in PHOTOS if p.package == "plasma-workspace-wallpapers"),
    ),
)

MANUAL = (
    "general-patches is cut from photographs of the Debian packages mate-backgrounds and "
    "plasma-workspace-wallpapers, fetched with apt-get download and dpkg -x (both must be on PATH: "
    "on Debian/Ubuntu they are; elsewhere get the two .deb files by hand). Or unpack them anywhere "
    f"(dpkg -x PACKAGE.deb DIR) and copy {MATE_FOLDER}/*.jpg and the {PLASMA_FOLDER}/THEME/ "
    "folders named in genood/data/general.py into a general-patches/ folder of --data-dir / "
    "GENOOD_DATA"
)


def split_photos(split: str) -> list[Photo]:
    """The photographs the split is cut from."""
    return [p for p in PHOTOS if p.split == split]


def general_patches(size: int = 28, channels: int = 1, name: str = "general-patches") -> Dataset:
    """The pool as a data set of ``size x size`` images with ``channels`` channels (1: grayscale,
    3: RGB); register another shape with ``register(general_patches(64, 3, "name"))``."""
    index = {photo.name: number for number, photo in enumerate(PHOTOS)}

    def decode(paths: dict[str, Path], split: str, progress: bool) -> tuple[np.ndarray, np.ndarray]:
        photos = split_photos(split)
        return read_patches(
            [paths[p.name] for p in photos],
            COUNTS[split],
            size,
            channels,
            SEEDS[split],
            labels=[index[p.name] for p in photos],
        )

    files = tuple(p.name for p in PHOTOS)
    colour = "grayscale" if channels == 1 else "RGB"
    return Dataset(
        name=name,
        description=(
            f"general-domain pool: {size}x{size} {colour} multi-scale crops of 24 photographs "
            "(Debian's mate-backgrounds, plasma-workspace-wallpapers), test from unseen photos"
        ),
        shape=(channels, size, size),
        splits=("train", "test"),
        default_split="test",
        # Every split's layout names all the photographs: the packages provide them all at once
        # and the data folder must hold the whole pool.
        layouts=(Layout(files, decode, ("train", "test")),),
        classes=tuple(p.label for p in PHOTOS),
        counts=dict(COUNTS),
        sha256={p.name: p.sha256 for p in PHOTOS},
        fallbacks=FALLBACKS,
        folders=tuple(dict.fromkeys((name, "general-patches"))),
        split_aliases={"val": "test", "valid": "test"},
        manual=MANUAL,
    )


GENERAL_PATCHES = register(general_patches())
GENERAL_PATCHES_RGB = register(general_patches(32, 3, "general-patches-rgb"))
