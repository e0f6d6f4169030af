"""helpers.training: run folders, reading TensorBoard logs back, evaluation, saving, features.

Everything here uses tiny Dense models on random numbers, never MobileNetV2.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from helpers import training


def _tiny_model(seed: int = 0, inputs: int = 4, *, compiled: bool = True) -> keras.Model:
    keras.utils.set_random_seed(seed)
    model = keras.Sequential(
        [
            keras.Input((inputs,)),
            keras.layers.Dense(4, activation="relu"),
            keras.layers.Dense(1, activation="sigmoid"),
        ]
    )
    if compiled:
        model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    return model


# --------------------------------------------------------------------------------------------
# Run folders
# --------------------------------------------------------------------------------------------


def test_new_run_dir_is_unique_on_quick_repeated_calls(tmp_path):
    runs = [training.new_run_dir("fit", root=tmp_path) for _ in range(5)]
    assert len(set(runs)) == 5
    for run in runs:
        assert run.is_dir() and run.parent == tmp_path
        assert run.name.startswith("fit-")
        assert ":" not in run.name


def test_new_run_dir_within_one_second_gets_suffixes(tmp_path, monkeypatch):
    monkeypatch.setattr(training, "_timestamp", lambda: "20250101-120000")
    names = [training.new_run_dir("fit", root=tmp_path).name for _ in range(3)]
    assert names == ["fit-20250101-120000", "fit-20250101-120000-2", "fit-20250101-120000-3"]


def test_new_run_dir_never_overwrites(tmp_path, monkeypatch):
    monkeypatch.setattr(training, "_timestamp", lambda: "20250101-120000")
    first = training.new_run_dir("fit", root=tmp_path)
    marker = first / "train" / "events.out.tfevents.old"
    marker.parent.mkdir()
    marker.write_text("earlier run")
    second = training.new_run_dir("fit", root=tmp_path)
    assert second != first
    assert marker.read_text() == "earlier run"
    assert list(second.iterdir()) == []


def test_new_run_dir_creates_missing_root(tmp_path):
    run = training.new_run_dir("fit", root=tmp_path / "logs" / "deeper")
    assert run.parent == tmp_path / "logs" / "deeper"


@pytest.mark.parametrize("name", ["a:b", "a/b", "", "x\\y", "run?"])
def test_new_run_dir_rejects_bad_names(tmp_path, name):
    with pytest.raises(ValueError):
        training.new_run_dir(name, root=tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_new_run_dir_file_in_place_of_root(tmp_path):
    blocker = tmp_path / "logs"
    blocker.write_text("oops, a file")
    with pytest.raises(NotADirectoryError) as excinfo:
        training.new_run_dir("fit", root=blocker)
    assert str(blocker) in str(excinfo.value)
    with pytest.raises(NotADirectoryError) as excinfo:
        training.new_run_dir("fit", root=blocker / "experiments")
    assert str(blocker) in str(excinfo.value)
    assert blocker.read_text() == "oops, a file"


def test_default_run_root_is_project_logs(monkeypatch, tmp_path):
    monkeypatch.setattr(training.config, "LOGS_ROOT", tmp_path / "logs")
    run = training.new_run_dir("fit")
    assert run.parent == tmp_path / "logs"


# --------------------------------------------------------------------------------------------
# Reading TensorBoard logs back
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def logged_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("logs") / "fit"
    rng = np.random.default_rng(0)
    x = rng.normal(size=(48, 4)).astype("float32")
    y = (x.sum(axis=1) > 0).astype("float32")
    model = _tiny_model()
    history = model.fit(
        x[:32],
        y[:32],
        validation_data=(x[32:], y[32:]),
        epochs=2,
        batch_size=8,
        verbose=0,
        # histogram_freq writes non-scalar tensors, write_graph the model config as text.
        callbacks=[keras.callbacks.TensorBoard(log_dir=str(run_dir), histogram_freq=1)],
    )
    return run_dir, history.history


def test_read_scalars_after_fit(logged_run):
    run_dir, history = logged_run
    scalars = training.read_scalars(run_dir)
    assert {"train", "validation"} <= set(scalars)
    for split in ("train", "validation"):
        for tag in ("epoch_loss", "epoch_accuracy"):
            values = scalars[split][tag]
            assert len(values) == 2, (split, tag)
            assert all(isinstance(v, float) and np.isfinite(v) for v in values)
    # Epoch order and values agree with what fit() returned.
    np.testing.assert_allclose(scalars["train"]["epoch_loss"], history["loss"], rtol=1e-6)
    np.testing.assert_allclose(scalars["validation"]["epoch_loss"], history["val_loss"], rtol=1e-6)
    np.testing.assert_allclose(scalars["train"]["epoch_accuracy"], history["accuracy"], rtol=1e-6)


def test_read_scalars_ignores_non_scalar_tensors(logged_run):
    run_dir, _ = logged_run
    train_tags = training.read_scalars(run_dir)["train"]
    assert "keras" not in train_tags  # the model config (a string tensor)
    assert not [tag for tag in train_tags if "histogram" in tag]
    # ... which really are in the event file.
    from tensorboard.backend.event_processing import event_accumulator

    acc = event_accumulator.EventAccumulator(str(run_dir / "train"), size_guidance={"tensors": 0})
    acc.Reload()
    assert [tag for tag in acc.Tags()["tensors"] if "histogram" in tag]


def test_read_scalars_on_empty_folder(tmp_path):
    with pytest.raises(FileNotFoundError) as excinfo:
        training.read_scalars(tmp_path)
    assert str(tmp_path) in str(excinfo.value)
    (tmp_path / "train").mkdir()
    (tmp_path / "train" / "notes.txt").write_text("no events here")
    with pytest.raises(FileNotFoundError):
        training.read_scalars(tmp_path)


# --------------------------------------------------------------------------------------------
# Evaluation
# --------------------------------------------------------------------------------------------


def test_evaluation_on_hand_made_arrays():
    labels = np.array([0, 0, 1, 1, 1, 0], dtype="int32")
    probabilities = np.array([0.1, 0.9, 0.8, 0.3, 0.5, 0.6], dtype="float32")
    result = training.Evaluation(labels, probabilities)
    np.testing.assert_array_equal(result.predictions, [0, 1, 1, 0, 1, 1])  # 0.5 counts as dog
    assert result.accuracy == pytest.approx(3 / 6)
    # rows = true class, columns = predicted class
    np.testing.assert_array_equal(result.confusion, [[1, 2], [1, 2]])
    assert result.confusion.sum() == len(labels)
    # most confident mistakes first: 0.9 (a cat called dog), 0.3 (a dog called cat), then 0.6
    assert result.wrong.tolist() == [1, 3, 5]


def test_evaluation_perfect_and_threshold():
    labels = np.array([0, 1, 1], dtype="int32")
    result = training.Evaluation(labels, np.array([0.2, 0.7, 0.99], dtype="float32"))
    assert result.accuracy == 1.0
    assert result.wrong.tolist() == []
    np.testing.assert_array_equal(result.confusion, [[1, 0], [0, 2]])
    strict = training.Evaluation(labels, np.array([0.2, 0.7, 0.99]), threshold=0.8)
    assert strict.wrong.tolist() == [1]


def test_evaluate_collects_labels_in_dataset_order():
    model = _tiny_model(inputs=2)
    x = np.random.default_rng(1).normal(size=(7, 2)).astype("float32")
    y = np.array([0, 1, 1, 0, 1, 0, 0], dtype="int32")
    result = training.evaluate(model, tf.data.Dataset.from_tensor_slices((x, y)).batch(3))
    np.testing.assert_array_equal(result.labels, y)
    np.testing.assert_allclose(
        result.probabilities, model.predict(x, verbose=0).reshape(-1), atol=1e-6
    )
    assert result.probabilities.shape == (7,)


# --------------------------------------------------------------------------------------------
# Saving and loading
# --------------------------------------------------------------------------------------------


def test_save_classifier_keeps_the_previous_file(tmp_path):
    path = tmp_path / "models" / "cats_vs_dogs.keras"
    first, second, third = (_tiny_model(seed, compiled=False) for seed in (1, 2, 3))
    assert training.save_classifier(first, path) == path
    training.save_classifier(second, path)
    training.save_classifier(third, path)  # within the same second as the previous save
    files = sorted(path.parent.glob("*.keras"))
    assert len(files) == 3 and path in files
    backups = [f for f in files if f != path]
    assert all(f.name.startswith("cats_vs_dogs-") for f in backups)

    x = np.ones((1, 4), dtype="float32")
    expected = sorted(float(m.predict(x, verbose=0)[0, 0]) for m in (first, second))
    kept = sorted(float(training.load_classifier(f).predict(x, verbose=0)[0, 0]) for f in backups)
    assert expected[0] != pytest.approx(expected[1])  # the two earlier models are distinguishable
    np.testing.assert_allclose(kept, expected, atol=1e-6)
    latest = training.load_classifier(path)
    np.testing.assert_allclose(latest.predict(x, verbose=0), third.predict(x, verbose=0), atol=1e-6)


@pytest.mark.parametrize("name", ["model.h5", "model.weights.h5", "model", "model.keras.bak"])
def test_save_classifier_rejects_other_suffixes(tmp_path, name):
    with pytest.raises(ValueError):
        training.save_classifier(_tiny_model(compiled=False), tmp_path / name)
    assert list(tmp_path.iterdir()) == []


def test_load_classifier_missing_file_points_to_notebook_05(tmp_path):
    missing = tmp_path / "nothing.keras"
    with pytest.raises(FileNotFoundError) as excinfo:
        training.load_classifier(missing)
    assert "05_training_tensorboard" in str(excinfo.value)
    assert str(missing) in str(excinfo.value)
