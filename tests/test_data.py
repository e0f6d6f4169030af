"""helpers.data on small generated photo folders: layouts, clutter, broken files, errors, the
download path, the file split and the tf.data pipelines."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from helpers import config, data

from .conftest import CLASS_RANGES, jpeg_bytes, random_photo, write_tree

# --------------------------------------------------------------------------------------------
# Layouts and where the folder comes from
# --------------------------------------------------------------------------------------------

LAYOUTS = {
    "archive": ("train", "validation"),
    "seed_lecture": ("training_set", "test_set"),
    "nested_archive": ("cats_and_dogs_filtered/train", "cats_and_dogs_filtered/validation"),
    "nested_two_levels": (
        "download/cats_and_dogs_filtered/train",
        "download/cats_and_dogs_filtered/validation",
    ),
    "kaggle_twin": ("training_set/training_set", "test_set/test_set"),
    "nested_seed_lecture": ("dataset/training_set", "dataset/test_set"),
}


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_layouts_are_found(tmp_path, layout):
    train_dir, val_dir = write_tree(tmp_path, *LAYOUTS[layout])
    assert data.find_split_dirs(tmp_path) == (train_dir, val_dir)
    info = data.inspect_dataset(tmp_path, verbose=False)
    assert info.train.directory == train_dir
    assert info.validation.directory == val_dir
    assert info.class_names == ["cats", "dogs"]
    assert info.train.counts() == {"cats": 6, "dogs": 6}
    assert info.validation.counts() == {"cats": 4, "dogs": 4}


def test_kaggle_twin_nesting_ignores_mac_clutter(tmp_path):
    train_dir, val_dir = write_tree(tmp_path, "training_set/training_set", "test_set/test_set")
    (tmp_path / "training_set" / "__MACOSX").mkdir()
    (tmp_path / "training_set" / ".DS_Store").write_bytes(b"\0")
    assert data.find_split_dirs(tmp_path) == (train_dir, val_dir)


def test_data_dir_argument(tiny_dataset, capsys):
    info = data.inspect_dataset(str(tiny_dataset))
    assert info.root == tiny_dataset
    out = capsys.readouterr().out
    assert "cats: 6" in out and "dogs: 6" in out  # verbose=True prints the summary
    assert "cats = 0" in out and "dogs = 1" in out


def test_tl_data_dir_environment_variable(tiny_dataset, monkeypatch):
    monkeypatch.setenv("TL_DATA_DIR", str(tiny_dataset))
    assert data.resolve_data_dir() == tiny_dataset
    info = data.inspect_dataset(verbose=False)
    assert info.root == tiny_dataset
    assert info.train.counts() == {"cats": 6, "dogs": 6}


def test_data_dir_argument_wins_over_environment(tiny_dataset, monkeypatch, tmp_path):
    monkeypatch.setenv("TL_DATA_DIR", str(tmp_path / "does_not_exist"))
    assert data.resolve_data_dir(tiny_dataset) == tiny_dataset
    assert data.inspect_dataset(tiny_dataset, verbose=False).root == tiny_dataset


# --------------------------------------------------------------------------------------------
# Clutter and broken files
# --------------------------------------------------------------------------------------------


def test_system_and_non_image_files_are_skipped_and_reported(tmp_path):
    train_dir, _ = write_tree(tmp_path)
    cats = train_dir / "cats"
    junk = [cats / ".DS_Store", cats / "Thumbs.db", cats / "desktop.ini", cats / "notes.txt"]
    for path in junk:
        path.write_bytes(b"not a photo")
    apple_double = cats / "._cat.0.jpg"  # macOS resource fork next to a real photo: hidden
    apple_double.write_bytes(b"\x00\x05\x16\x07" + b"\0" * 60)
    loose = train_dir / ".DS_Store"  # clutter next to the class folders
    loose.write_bytes(b"\0")
    junk += [apple_double, loose]

    info = data.inspect_dataset(tmp_path, verbose=False)
    skipped = {path: reason for path, reason in info.train.skipped}
    for path in junk:
        assert path in skipped, f"{path.name} not reported as skipped"
        assert skipped[path]
    assert info.train.counts() == {"cats": 6, "dogs": 6}
    assert not set(junk) & set(info.train.files["cats"])
    assert not info.train.broken
    summary = info.summary()
    for path in junk:
        assert str(path) in summary


def test_broken_images_are_reported_with_path_and_excluded(tmp_path):
    train_dir, _ = write_tree(tmp_path)
    rng = np.random.default_rng(1)
    whole = jpeg_bytes(random_photo(rng, "dogs"))
    truncated = train_dir / "dogs" / "truncated.jpg"
    truncated.write_bytes(whole[: len(whole) // 2])
    garbage = train_dir / "dogs" / "x.jpg"
    garbage.write_bytes(rng.bytes(2000))

    info = data.inspect_dataset(tmp_path, verbose=False)
    broken = {path: reason for path, reason in info.train.broken}
    assert set(broken) == {truncated, garbage}
    assert all(broken.values())
    assert truncated not in info.train.files["dogs"] and garbage not in info.train.files["dogs"]
    assert info.train.counts() == {"cats": 6, "dogs": 6}
    summary = info.summary()
    assert str(truncated) in summary and str(garbage) in summary

    # The broken files never reach TensorFlow: a full pass over every pipeline works.
    ds = data.make_datasets(tmp_path, batch_size=8, verbose=False)
    seen = sum(int(y.shape[0]) for split in (ds.train, ds.validation, ds.test) for _, y in split)
    assert seen == 12 + 8
    assert not {str(truncated), str(garbage)} & set(ds.files["train"].paths)


def test_tiny_image_is_broken(tmp_path):
    path = tmp_path / "dot.png"
    Image.new("RGB", (1, 1)).save(path)
    assert data.check_image(path)


def _special(mode: str, path: Path) -> Image.Image:
    base = np.zeros((30, 40, 3), np.uint8)
    base[..., 0], base[..., 1], base[..., 2] = 220, 30, 40
    base[:, :20] = (20, 180, 90)
    image = Image.fromarray(base)
    if mode == "RGBA":
        alpha = Image.new("L", image.size, 128)
        image = image.convert("RGBA")
        image.putalpha(alpha)
    elif mode == "P":
        image = image.convert("P", palette=Image.Palette.ADAPTIVE, colors=8)
    else:
        image = image.convert(mode)
    image.save(path)
    return image


@pytest.mark.parametrize(
    ("mode", "name"),
    [
        ("L", "gray.jpg"),
        ("CMYK", "cmyk.jpg"),
        ("RGBA", "rgba.png"),
        ("P", "palette.png"),
        ("RGB", "plain.gif"),
        ("RGB", "plain.bmp"),
    ],
)
def test_load_image_converts_every_colour_mode_to_rgb(tmp_path, mode, name):
    path = tmp_path / name
    image = _special(mode, path)
    assert data.check_image(path) is None
    tensor = data.load_image(str(path))
    assert tuple(tensor.shape) == (224, 224, 3)
    assert tensor.dtype.name == "float32"
    pixels = tensor.numpy()
    assert pixels.min() >= 0.0 and pixels.max() <= 255.0
    # Colours survive (CMYK is not inverted, alpha is dropped, the palette is applied).
    with Image.open(path) as reread:
        expected = np.asarray(reread.convert("RGB"), dtype="float32")
    assert image.size == (40, 30)
    np.testing.assert_allclose(
        pixels[:, :100].mean(axis=(0, 1)), expected[:, :15].mean(axis=(0, 1)), atol=4
    )
    np.testing.assert_allclose(
        pixels[:, 124:].mean(axis=(0, 1)), expected[:, 25:].mean(axis=(0, 1)), atol=4
    )


def test_load_images_stacks_float32(tiny_dataset):
    paths = sorted((tiny_dataset / "train" / "cats").glob("*.jpg"))[:3]
    batch = data.load_images(paths)
    assert batch.shape == (3, 224, 224, 3)
    assert batch.dtype == np.float32
    assert batch.min() >= 0.0 and batch.max() <= 255.0
    assert batch.mean(axis=(1, 2, 3)).max() < CLASS_RANGES["dogs"][0]  # dark cats


def test_every_accepted_file_decodes_in_tensorflow(tmp_path):
    train_dir, _ = write_tree(tmp_path)
    disguised = train_dir / "cats" / "scan.jpg"
    random_photo(np.random.default_rng(2), "cats").save(disguised, format="TIFF")
    info = data.inspect_dataset(tmp_path, verbose=False)
    assert disguised in dict(info.train.broken), "TIFF in a .jpg should be reported as broken"


# --------------------------------------------------------------------------------------------
# Clear errors that name the folder
# --------------------------------------------------------------------------------------------


def _data_error(folder) -> str:
    with pytest.raises(data.DataError) as excinfo:
        data.inspect_dataset(folder, verbose=False)
    return str(excinfo.value)


def test_missing_folder(tmp_path):
    missing = tmp_path / "nincs_ilyen_mappa"
    assert str(missing) in _data_error(missing)


def test_folder_is_a_file(tmp_path):
    path = tmp_path / "photos.zip"
    path.write_bytes(b"PK")
    assert str(path) in _data_error(path)


def test_folder_without_the_layout(tmp_path):
    for name in ("cats", "dogs"):
        (tmp_path / "photos" / name).mkdir(parents=True)
    message = _data_error(tmp_path)
    assert str(tmp_path) in message
    assert "photos" in message  # says what it did find
    assert "TL_DATA_DIR" in message


def test_empty_folder(tmp_path):
    assert str(tmp_path) in _data_error(tmp_path)


def test_empty_class_folder_with_only_clutter(tmp_path):
    train_dir, _ = write_tree(tmp_path)
    dogs = train_dir / "dogs"
    for path in dogs.iterdir():
        path.unlink()
    (dogs / ".DS_Store").write_bytes(b"\0")
    (dogs / "notes.txt").write_text("kutyák")
    assert str(dogs) in _data_error(tmp_path)


def test_split_without_class_folders(tmp_path):
    train_dir, _ = write_tree(tmp_path)
    for folder in train_dir.iterdir():
        for path in folder.iterdir():
            path.rename(train_dir / f"{folder.name}_{path.name}")
        folder.rmdir()
    assert str(train_dir) in _data_error(tmp_path)


def test_single_class(tmp_path):
    train_dir, _ = write_tree(tmp_path, classes=("cats",))
    message = _data_error(tmp_path)
    assert str(train_dir) in message
    assert "1" in message


def test_three_classes(tmp_path):
    train_dir, _ = write_tree(tmp_path, classes=("birds", "cats", "dogs"))
    message = _data_error(tmp_path)
    assert str(train_dir) in message
    assert "birds" in message


def test_classes_differ_between_train_and_validation(tmp_path):
    train_dir, val_dir = write_tree(tmp_path, val_classes=("cats", "horses"))
    message = _data_error(tmp_path)
    assert str(train_dir) in message and str(val_dir) in message
    assert "horses" in message


# --------------------------------------------------------------------------------------------
# Download path (a local file:// archive stands in for the internet)
# --------------------------------------------------------------------------------------------


def _write_archive(path: Path, top: str = "cats_and_dogs_filtered") -> Path:
    rng = np.random.default_rng(3)
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as archive:
        for split, count in (("train", 3), ("validation", 2)):
            for class_name in ("cats", "dogs"):
                for i in range(count):
                    name = f"{top}/{split}/{class_name}/{class_name[:-1]}.{i}.jpg"
                    archive.writestr(name, jpeg_bytes(random_photo(rng, class_name)))
    return path


@pytest.fixture
def data_root(tmp_path, monkeypatch):
    root = tmp_path / "project_data"
    monkeypatch.setattr(config, "DATA_ROOT", root)
    monkeypatch.delenv("TL_DATA_DIR", raising=False)
    return root


def test_download_extracts_verifies_and_then_works_offline(tmp_path, data_root):
    archive = _write_archive(tmp_path / "server" / data.ARCHIVE_NAME)
    origin = "file://" + str(archive)

    path = data.download_dataset(origin=origin)
    assert path == data_root / "cats_and_dogs_filtered_extracted"
    train_dir, val_dir = data.find_split_dirs(path)
    assert train_dir == path / "cats_and_dogs_filtered" / "train"
    assert len(list((train_dir / "dogs").glob("*.jpg"))) == 3

    archive.unlink()  # the "internet" is gone: the second call must not need it
    assert data.download_dataset(origin=origin) == path
    # Without TL_DATA_DIR, inspect_dataset() falls back to the downloaded copy (offline here).
    info = data.inspect_dataset(verbose=False)
    assert info.train.directory == train_dir
    assert info.validation.counts() == {"cats": 2, "dogs": 2}


@pytest.mark.parametrize("origin", ["file:///nonexistent/x.zip", "http://127.0.0.1:9/x.zip"])
def test_unreachable_origin_raises_data_error_mentioning_tl_data_dir(data_root, origin):
    with pytest.raises(data.DataError) as excinfo:
        data.download_dataset(origin=origin)
    message = str(excinfo.value)
    assert "TL_DATA_DIR" in message
    assert origin in message
    assert not (data_root / data.ARCHIVE_NAME).exists()  # no half-downloaded leftovers


def test_archive_with_wrong_layout_is_rejected(tmp_path, data_root):
    archive = tmp_path / "server" / data.ARCHIVE_NAME
    archive.parent.mkdir()
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("something_else/readme.txt", "no photos here")
    with pytest.raises(data.DataError):
        data.download_dataset(origin="file://" + str(archive))


def test_interrupted_download_is_downloaded_again(tmp_path, data_root):
    archive = _write_archive(tmp_path / "server" / data.ARCHIVE_NAME)
    data_root.mkdir(parents=True)
    whole = archive.read_bytes()
    (data_root / data.ARCHIVE_NAME).write_bytes(whole[: len(whole) // 2])  # kernel died mid-way
    path = data.download_dataset(origin="file://" + str(archive))
    assert data.find_split_dirs(path)


# --------------------------------------------------------------------------------------------
# Splitting by files
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_info(tiny_dataset):
    return data.inspect_dataset(tiny_dataset, verbose=False)


def test_split_files_is_disjoint_and_complete(tiny_info):
    parts = data.split_files(tiny_info)
    sets = {name: set(part.paths) for name, part in parts.items()}
    assert len(sets["train"]) == len(parts["train"]) == 12
    assert not sets["train"] & sets["validation"]
    assert not sets["train"] & sets["test"]
    assert not sets["validation"] & sets["test"]
    held_out = {str(p) for files in tiny_info.validation.files.values() for p in files}
    assert sets["validation"] | sets["test"] == held_out
    assert len(parts["test"]) == 4 and len(parts["validation"]) == 4  # test_fraction=0.5


def test_split_files_repeats_with_the_same_seed(tiny_info):
    first = data.split_files(tiny_info, seed=7)
    second = data.split_files(tiny_info, seed=7)
    for name in ("train", "validation", "test"):
        assert first[name].paths == second[name].paths
        np.testing.assert_array_equal(first[name].labels, second[name].labels)
    others = [data.split_files(tiny_info, seed=s)["test"].paths for s in range(5)]
    assert any(paths != first["test"].paths for paths in others)


def test_split_files_is_stratified_and_labels_follow_folders(tiny_info):
    for part in data.split_files(tiny_info).values():
        assert set(part.labels.tolist()) == {0, 1}
        assert part.labels.dtype == np.int32
        for path, label in zip(part.paths, part.labels, strict=True):
            assert Path(path).parent.name == ["cats", "dogs"][label]


def test_split_files_max_per_class(tiny_info):
    parts = data.split_files(tiny_info, max_per_class=2)
    for name, part in parts.items():
        counts = np.bincount(part.labels, minlength=2)
        assert counts.max() <= 2, name
        assert counts.min() >= 1, name
    assert np.bincount(parts["train"].labels).tolist() == [2, 2]


def test_split_files_test_fraction(tiny_info):
    parts = data.split_files(tiny_info, test_fraction=0.25)
    assert np.bincount(parts["test"].labels).tolist() == [1, 1]
    assert np.bincount(parts["validation"].labels).tolist() == [3, 3]


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.2, 1.5])
def test_split_files_rejects_bad_test_fraction(tiny_info, fraction):
    with pytest.raises(ValueError):
        data.split_files(tiny_info, test_fraction=fraction)


# --------------------------------------------------------------------------------------------
# tf.data pipelines
# --------------------------------------------------------------------------------------------


def _collect(dataset):
    images, labels = [], []
    for x, y in dataset:
        images.append(x.numpy())
        labels.append(y.numpy())
    return np.concatenate(images), np.concatenate(labels)


def _assert_pixels_match_labels(images, labels):
    means = images.reshape(len(images), -1).mean(axis=1)
    np.testing.assert_array_equal(labels, (means > 128).astype("int32"))


@pytest.fixture(scope="module")
def tiny_datasets(tiny_dataset):
    return data.make_datasets(
        tiny_dataset, batch_size=4, augment=data.augmentation(), verbose=False
    )


def test_make_datasets_element_spec(tiny_datasets):
    assert tiny_datasets.class_names == ["cats", "dogs"]
    for name in ("train", "validation", "test"):
        pipeline = getattr(tiny_datasets, name)
        images, labels = next(iter(pipeline))
        assert tuple(images.shape) == (4, 224, 224, 3), name
        assert images.dtype.name == "float32"
        assert labels.dtype.name == "int32"
        assert tuple(labels.shape) == (4,)
        assert float(images.numpy().min()) >= 0.0 and float(images.numpy().max()) <= 255.0


def test_every_pipeline_yields_its_files_with_matching_labels(tiny_datasets):
    for name in ("train", "validation", "test"):
        images, labels = _collect(getattr(tiny_datasets, name))
        assert len(labels) == len(tiny_datasets.files[name]), name
        assert (
            np.bincount(labels).tolist() == np.bincount(tiny_datasets.files[name].labels).tolist()
        )
        _assert_pixels_match_labels(images, labels)  # cats (dark) are 0, dogs (bright) are 1
    _, labels = _collect(tiny_datasets.validation)
    np.testing.assert_array_equal(labels, tiny_datasets.files["validation"].labels)  # file order


def test_augmentation_differs_between_epochs(tiny_datasets):
    # Shuffling alone only reorders the same images; compare order-free image fingerprints.
    first, first_labels = _collect(tiny_datasets.train)
    second, second_labels = _collect(tiny_datasets.train)
    _assert_pixels_match_labels(first, first_labels)
    _assert_pixels_match_labels(second, second_labels)
    assert sorted(first.sum(axis=(1, 2, 3))) != sorted(second.sum(axis=(1, 2, 3)))


def test_without_augmentation_epochs_hold_the_same_images(tiny_dataset):
    plain = data.make_datasets(tiny_dataset, batch_size=4, verbose=False)
    first, _ = _collect(plain.train)
    second, _ = _collect(plain.train)
    np.testing.assert_array_equal(
        np.sort(first.sum(axis=(1, 2, 3))), np.sort(second.sum(axis=(1, 2, 3)))
    )


def test_cache_sits_before_augmentation(tiny_datasets):
    # Same order every pass (no shuffle): identical batches would mean augmented images were cached.
    pipeline = data.make_dataset(
        tiny_datasets.files["train"], batch_size=4, augment=data.augmentation(), cache=True
    )
    first, first_labels = _collect(pipeline)
    second, second_labels = _collect(pipeline)
    np.testing.assert_array_equal(first_labels, second_labels)
    assert not np.array_equal(first, second)


def test_evaluation_pipelines_are_deterministic(tiny_datasets):
    for name in ("validation", "test"):
        pipeline = getattr(tiny_datasets, name)
        first, first_labels = _collect(pipeline)
        second, second_labels = _collect(pipeline)
        np.testing.assert_array_equal(first, second)
        np.testing.assert_array_equal(first_labels, second_labels)
