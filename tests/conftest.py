"""Shared fixtures of the unit tests: tiny photo folders generated in a temporary directory.

The tests never touch the shared photos except in ``test_integration.py`` (read-only, through
``TL_DATA_DIR``). Generated cats are dark (pixel values 0..99) and dogs are bright (156..255), so a
test can tell from the pixels alone whether an image still carries the right label after the
tf.data pipeline (resizing, shuffling, augmentation with reflect padding keep the value range).
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

#: Pixel value range of the generated photos of each class (upper bound exclusive).
CLASS_RANGES = {"cats": (0, 100), "dogs": (156, 256)}


def random_photo(rng: np.random.Generator, class_name: str | None = None) -> Image.Image:
    """A random RGB image between 40x32 and 80x60 pixels, dark for cats and bright for dogs.

    Both sides stay at or above ``helpers.data.MIN_SIDE`` (32), the smallest photo accepted."""
    width, height = int(rng.integers(40, 81)), int(rng.integers(32, 61))
    low, high = CLASS_RANGES.get(class_name or "", (0, 256))
    return Image.fromarray(rng.integers(low, high, (height, width, 3), dtype=np.uint8))


def jpeg_bytes(image: Image.Image, quality: int = 90) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def write_tree(
    root: Path,
    train: str = "train",
    validation: str = "validation",
    *,
    n_train: int = 6,
    n_val: int = 4,
    classes: tuple[str, ...] = ("cats", "dogs"),
    val_classes: tuple[str, ...] | None = None,
    seed: int = 0,
) -> tuple[Path, Path]:
    """Write ``root/<train>/<class>/*.jpg`` and ``root/<validation>/<class>/*.jpg``.

    ``train`` and ``validation`` may contain slashes (``"training_set/training_set"``).

    Returns:
        ``(train_dir, validation_dir)``.
    """
    rng = np.random.default_rng(seed)
    dirs = []
    for split, count, names in (
        (train, n_train, classes),
        (validation, n_val, val_classes or classes),
    ):
        split_dir = root / split
        for class_name in names:
            folder = split_dir / class_name
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                stem = class_name.rstrip("s")
                random_photo(rng, class_name).save(folder / f"{stem}.{i}.jpg", quality=90)
        dirs.append(split_dir)
    return dirs[0], dirs[1]


@pytest.fixture
def make_tree() -> Callable[..., tuple[Path, Path]]:
    """The :func:`write_tree` function, for tests that build their own folder in ``tmp_path``."""
    return write_tree


@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory) -> Path:
    """A clean data folder: train 6 cats + 6 dogs, validation 4 + 4 (shared within a module)."""
    root = tmp_path_factory.mktemp("tiny_dataset")
    write_tree(root)
    return root
