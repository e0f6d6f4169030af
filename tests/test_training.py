"""helpers.training: run folders, reading TensorBoard logs back, evaluation, saving, features.

Everything here uses tiny Dense models on random numbers, never MobileNetV2.
"""

from __future__ import annotations

import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

from helpers import training

#: Keras 3.15.1 converts variables with ``np.array()``, which NumPy 2 deprecates, in ``model.save``
#: and in the TensorBoard histogram writer: Keras' own code, not the series'.
KERAS_NUMPY_COPY_WARNING = "__array__ implementation doesn't accept a copy keyword"
keras_saves = pytest.mark.filterwarnings(f"ignore:{KERAS_NUMPY_COPY_WARNING}:DeprecationWarning")


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
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", KERAS_NUMPY_COPY_WARNING, DeprecationWarning)
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


def test_evaluation_accepts_what_predict_returns():
    labels = np.array([0, 1, 1, 0], dtype="int32")
    column = np.array([[0.1], [0.8], [0.3], [0.2]], dtype="float32")  # model.predict(x): (N, 1)
    result = training.Evaluation(labels, column)
    assert result.probabilities.shape == (4,)
    assert result.accuracy == pytest.approx(0.75)
    assert result.confusion.sum() == 4
    np.testing.assert_array_equal(result.confusion, [[2, 0], [1, 1]])
    assert result.wrong.tolist() == [2]
    as_column = training.Evaluation(labels.reshape(-1, 1), column.ravel())
    np.testing.assert_array_equal(as_column.labels, labels)


def test_evaluation_wrong_measures_confidence_from_the_threshold():
    labels = np.array([0, 0, 1], dtype="int32")
    # threshold 0.2: 0.25 and 0.9 are both called dogs, 0.1 is called a cat.
    result = training.Evaluation(labels, np.array([0.9, 0.25, 0.1]), threshold=0.2)
    np.testing.assert_array_equal(result.predictions, [1, 1, 0])
    # distances from 0.2: 0.7, 0.05, 0.1 -> the 0.9 cat first, then the 0.1 dog, then 0.25
    assert result.wrong.tolist() == [0, 2, 1]


@pytest.mark.parametrize(
    ("labels", "probabilities", "error", "match"),
    [
        ([0.0, 1.0], [0.2, 0.9], TypeError, "astype"),
        (["cat", "dog"], [0.2, 0.9], TypeError, "egész"),
        ([0, 1, 1], [0.2, 0.9], ValueError, "ugyanannyi"),
        ([0, 1], [[0.2, 0.8], [0.9, 0.1]], ValueError, r"\(N, 1\)"),
        ([0, 2], [0.2, 0.9], ValueError, "0 vagy 1"),
        ([0, 1], [-3.2, 4.1], ValueError, "Logit"),
        ([0, 1], [0.2, np.nan], ValueError, "NaN"),
    ],
    ids=["float_labels", "string_labels", "lengths", "two_columns", "label_2", "logits", "nan"],
)
def test_evaluation_rejects_mismatched_inputs(labels, probabilities, error, match):
    with pytest.raises(error, match=match):
        training.Evaluation(np.asarray(labels), np.asarray(probabilities))


@pytest.mark.parametrize("threshold", [0.0, 1.0, 1.5, "0.5"])
def test_evaluation_rejects_a_threshold_outside_zero_and_one(threshold):
    with pytest.raises((TypeError, ValueError), match="küszöb"):
        training.Evaluation(np.array([0, 1]), np.array([0.2, 0.9]), threshold=threshold)


def test_evaluate_wants_a_dataset_not_file_splits(tiny_dataset):
    from helpers import data

    model = _tiny_model(inputs=2)
    files = data.make_datasets(tiny_dataset, verbose=False).files
    with pytest.raises(TypeError, match="make_dataset"):
        training.evaluate(model, files["test"])
    with pytest.raises(TypeError, match="Keras-modell"):
        training.evaluate("model", tf.data.Dataset.range(3))


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


def test_evaluate_feeds_at_most_evaluate_batch_size_examples_per_pass(monkeypatch):
    model = _tiny_model(inputs=2)
    seen = []
    predict_on_batch = model.predict_on_batch
    monkeypatch.setattr(
        model, "predict_on_batch", lambda x: seen.append(len(x)) or predict_on_batch(x)
    )
    n = 2 * training.EVALUATE_BATCH_SIZE + 5
    x = np.random.default_rng(2).normal(size=(n, 2)).astype("float32")
    y = np.arange(n) % 2
    result = training.evaluate(model, tf.data.Dataset.from_tensor_slices((x, y)).batch(n))
    assert max(seen) == training.EVALUATE_BATCH_SIZE and sum(seen) == n
    np.testing.assert_array_equal(result.labels, y)
    np.testing.assert_allclose(
        result.probabilities, model.predict(x, verbose=0).reshape(-1), atol=1e-6
    )


# --------------------------------------------------------------------------------------------
# Saving and loading
# --------------------------------------------------------------------------------------------


@keras_saves
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


class _SaveFails(Exception):
    pass


def _failing_save(path, *args, **kwargs):
    """Write half a file, then fail: a full disk or an unserialisable layer in mid-save."""
    with open(path, "wb") as stream:
        stream.write(b"PK\x03\x04 half a zip archive")
    raise _SaveFails("disk full")


@keras_saves
def test_a_failed_save_loses_nothing(tmp_path, monkeypatch):
    path = tmp_path / "models" / "cats_vs_dogs.keras"
    good = _tiny_model(1, compiled=False)
    training.save_classifier(good, path)
    before = path.read_bytes()
    broken = _tiny_model(2, compiled=False)
    monkeypatch.setattr(broken, "save", _failing_save)
    with pytest.raises(_SaveFails):
        training.save_classifier(broken, path)
    assert path.read_bytes() == before  # the previous model, complete and in place
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]  # no backup, no temp
    x = np.ones((1, 4), dtype="float32")
    np.testing.assert_allclose(
        training.load_classifier(path).predict(x, verbose=0), good.predict(x, verbose=0)
    )


def test_a_failed_first_save_leaves_no_file(tmp_path, monkeypatch):
    path = tmp_path / "cats_vs_dogs.keras"
    broken = _tiny_model(2, compiled=False)
    monkeypatch.setattr(broken, "save", _failing_save)
    with pytest.raises(_SaveFails):
        training.save_classifier(broken, path)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(FileNotFoundError, match="05_training_tensorboard"):
        training.load_classifier(path)


def test_a_damaged_model_file_gets_a_clear_message(tmp_path):
    path = tmp_path / "cats_vs_dogs.keras"
    path.write_bytes(b"")
    with pytest.raises(ValueError, match="töröld"):
        training.load_classifier(path)


@keras_saves
def test_default_model_path_follows_the_output_folder(monkeypatch, tmp_path):
    target = tmp_path / "models" / "cats_vs_dogs.keras"
    monkeypatch.setattr(training, "CLASSIFIER_PATH", target)
    model = _tiny_model(3, compiled=False)
    assert training.save_classifier(model) == target
    assert training.load_classifier().count_params() == model.count_params()


@keras_saves
def test_paths_expand_the_home_folder(monkeypatch, tmp_path):
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    work.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(work)
    run = training.new_run_dir("fit", root="~/logs")
    assert run.parent == home / "logs"
    saved = training.save_classifier(_tiny_model(4, compiled=False), "~/models/m.keras")
    assert saved == home / "models" / "m.keras" and saved.is_file()
    assert training.load_classifier("~/models/m.keras").count_params() == 25
    assert list(work.iterdir()) == []  # no literal "~" folder


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: training.new_run_dir(42), "szöveg"),
        (lambda: training.new_run_dir("fit", root=42), "elérési út"),
        (lambda: training.save_classifier("model.keras"), "Keras-modell"),
        (lambda: training.save_classifier(_tiny_model(compiled=False), 42), "elérési út"),
        (lambda: training.load_classifier(42), "elérési út"),
    ],
    ids=["run_name", "run_root", "save_model", "save_path", "load_path"],
)
def test_wrong_argument_types_get_clear_messages(call, match):
    with pytest.raises(TypeError, match=match):
        call()


# --------------------------------------------------------------------------------------------
# Epoch timer
# --------------------------------------------------------------------------------------------


def test_epoch_timer_is_a_keras_callback_recording_each_epoch():
    timer = training.EpochTimer()
    assert isinstance(timer, keras.callbacks.Callback)
    model = _tiny_model()
    x = np.zeros((8, 4), dtype="float32")
    model.fit(x, np.zeros(8), epochs=3, batch_size=4, callbacks=[timer], verbose=0)
    assert len(timer.seconds) == 3 and all(s > 0 for s in timer.seconds)


def test_step_timer_times_every_training_step_but_not_validation():
    timer = training.StepTimer()
    model = _tiny_model()
    x, y = np.zeros((8, 4), dtype="float32"), np.zeros(8)
    model.fit(x, y, validation_data=(x, y), epochs=2, batch_size=4, callbacks=[timer], verbose=0)
    assert len(timer.seconds) == 4 and all(s > 0 for s in timer.seconds)
    assert timer.typical == float(np.median(timer.seconds[1:]))  # the first step builds the graph


def test_step_timer_before_any_step_says_how_to_use_it():
    with pytest.raises(ValueError, match="callbacks"):
        _ = training.StepTimer().typical
