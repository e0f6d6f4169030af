"""helpers.exercises: the self-check of the notebooks' exercises.

Every task registered in ``helpers.exercises.TASKS`` needs an entry in :data:`EXAMPLES` below (its
right answer and, for a computed task, a small example context): ``test_every_task`` walks the
whole registry, so a task an author adds later is covered as soon as it exists, and fails until
its example is here. The right answers live in this test file, not next to their hashes in the
installed package.
"""

from __future__ import annotations

import copy
import numbers
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import keras
import numpy as np
import pytest
import tensorflow as tf

from helpers import data, exercises, training
from helpers.exercises import Task


@dataclass
class Example:
    """A right answer of a task, and the notebook objects its check needs."""

    right: Any
    context: dict[str, Any] = field(default_factory=dict)


def _files(test_labels) -> dict:
    return {"test": SimpleNamespace(labels=np.asarray(test_labels))}


# 01_data_loading.ipynb
def _dataset_info(n_train: int, n_validation: int) -> data.DatasetInfo:
    """A checked data set of file names only (split_files never opens the files)."""

    def split(name: str, n: int) -> data.Split:
        files = {c: [Path(f"{name}/{c}/{i}.jpg") for i in range(n)] for c in data.CLASS_NAMES}
        return data.Split(name, Path(name), files)

    return data.DatasetInfo(Path("."), split("train", n_train), split("validation", n_validation))


# --- 05 ---
# 05_training_tensorboard.ipynb: a linear head whose right answers are counted by hand.
def _linear_head(sign: float = 1.0):
    """P(dog) = sigmoid(sign * (x0 - x1)); a list of inputs, like a FeatureCache's tail."""
    inputs = keras.Input((2,))
    head = keras.layers.Dense(1, activation="sigmoid", name="dog_probability")
    model = keras.Model([inputs], head(inputs))
    head.set_weights([np.array([[sign], [-sign]], "float32"), np.zeros(1, "float32")])
    return model


_HEAD_FEATURES = np.array([[2.0, 0.0], [0.0, 2.0], [1.0, 0.5], [0.2, 1.0]], "float32")
_HEAD_LABELS = np.array([1, 0, 0, 0])  # predicted 1, 0, 1, 0: three of four right
# With sign -1 (another model than the cache's tail): predicted 0, 1, 0, 1, one of four right.


def _cache_of(head) -> training.FeatureCache:
    features, labels = {"validation": [_HEAD_FEATURES]}, {"validation": _HEAD_LABELS}
    return training.FeatureCache(head, "dog_probability", head, features, labels, 0.0)


# At threshold 0.9: predicted 1, 0, 0 for the cats and 0, 0, 1, 1 for the dogs.
_THRESHOLD_RESULT = training.Evaluation(
    np.array([0, 0, 0, 1, 1, 1, 1]), np.array([0.95, 0.6, 0.1, 0.8, 0.3, 0.92, 0.99])
)


# --- 06 ---
# 06_what_the_network_sees.ipynb: tiny models whose right answers are computed independently.
def _tiny_features():
    """Any-size input -> conv -> ReLU6 ("conv_relu"), random weights."""
    keras.utils.set_random_seed(6)
    inputs = keras.Input((None, None, 3), name="image")
    x = keras.layers.Conv2D(4, 3, padding="same", name="conv")(inputs)
    return keras.Model(inputs, keras.layers.ReLU(6.0, name="conv_relu")(x))


def _plain_ascent(net, layer, channel, size, steps) -> float:
    """The notebook's ascent_step loop, written out once more with a tape."""
    target = keras.Model(net.inputs[0], net.get_layer(layer).input)
    image = tf.constant(
        127.5 + np.random.default_rng(0).normal(0.0, 8.0, (1, size, size, 3)), tf.float32
    )
    for _ in range(steps):
        with tf.GradientTape() as tape:
            tape.watch(image)
            objective = tf.reduce_mean(target(image)[:, 2:-2, 2:-2, channel])
        grads = tape.gradient(objective, image)
        image = tf.clip_by_value(image + 4.0 * grads / (tf.math.reduce_std(grads) + 1e-8), 0, 255)
    return float(tf.reduce_mean(target(image)[:, 2:-2, 2:-2, channel]))


def _bright_spot_classifier():
    """16x16 input -> "out_relu" (8x8 local brightness) -> avg_pool -> dog_probability (dog)."""
    inputs = keras.Input((16, 16, 3), name="image")
    conv = keras.layers.Conv2D(2, 3, strides=2, padding="same", activation="relu", name="out_relu")
    head = keras.layers.Dense(1, activation="sigmoid", name="dog_probability")
    model = keras.Model(
        inputs, head(keras.layers.GlobalAveragePooling2D(name="avg_pool")(conv(inputs)))
    )
    kernel = np.zeros((3, 3, 3, 2), dtype="float32")
    kernel[..., 0] = 1.0 / 27.0
    conv.set_weights([kernel, np.zeros(2, "float32")])
    head.set_weights([np.array([[1.0], [0.0]], "float32"), np.array([1.0], "float32")])
    return model


def _bright_spot_photo() -> np.ndarray:
    photo = np.full((16, 16, 3), 20.0, dtype="float32")
    photo[4:6, 10:12] = 255.0  # covered by output row 2 (input rows 4-6), column 5 (10-12)
    return photo


def _colour_classifier():
    """P(dog) = sigmoid((mean red - mean green) / 64)."""
    inputs = keras.Input((8, 8, 3), name="image")
    head = keras.layers.Dense(1, activation="sigmoid", name="dog_probability")
    model = keras.Model(inputs, head(keras.layers.GlobalAveragePooling2D(name="avg_pool")(inputs)))
    head.set_weights([np.array([[1 / 64], [-1 / 64], [0.0]], "float32"), np.zeros(1, "float32")])
    return model


def _occlusion_example() -> tuple[float, dict]:
    rng = np.random.default_rng(6)
    photos = rng.uniform(0, 255, (3, 8, 8, 3)).astype("float32")
    maps = rng.permutation(3 * 64).reshape(3, 8, 8).astype("float32")  # no ties
    signs = np.array([1.0, -1.0, 1.0])
    hidden = photos.copy()
    for i in range(3):  # the 10% hottest: the 7 largest of 64 values (>= the 90% quantile)
        hidden[i][maps[i] >= np.quantile(maps[i], 0.9)] = 127.5
    logit = (hidden[..., 0].mean(axis=(1, 2)) - hidden[..., 1].mean(axis=(1, 2))) / 64
    p_dog = 1 / (1 + np.exp(-logit))
    right = float(np.where(signs > 0, p_dog, 1 - p_dog).mean())
    return right, {"model": _colour_classifier(), "photos": photos, "maps": maps, "signs": signs}


_TINY_FEATURES = _tiny_features()
_OCCLUSION_RIGHT, _OCCLUSION_CONTEXT = _occlusion_example()


# --- 07 ---
# 07_experiments.ipynb
def _tiny_residual_cut():
    """image -> a -> b -> block_12_project; block_12_add = block_12_project + a: two tensors
    (b's 4x4x5 and a's 4x4x3 output) cross the cut before block_12_project."""
    inputs = keras.Input((4, 4, 3), name="image")
    a = keras.layers.Conv2D(3, 1, name="a")(inputs)
    b = keras.layers.Conv2D(5, 1, name="b")(a)
    project = keras.layers.Conv2D(3, 1, name="block_12_project")(b)
    return keras.Model(inputs, keras.layers.Add(name="block_12_add")([project, a]))


_BRIGHTNESS = np.array([10.0, 240.0, 250.0, 220.0, 30.0, 100.0])
_BIASED_EVAL = training.Evaluation(
    np.array([0, 0, 0, 1, 1, 1]), np.array([0.2, 0.3, 0.9, 0.7, 0.3, 0.9])
)
# Pearson's r written out: covariance over the product of the standard deviations.
_P_CENTRED = _BIASED_EVAL.probabilities - _BIASED_EVAL.probabilities.mean()
_B_CENTRED = _BRIGHTNESS - _BRIGHTNESS.mean()
_R = float((_P_CENTRED * _B_CENTRED).sum() / np.sqrt((_P_CENTRED**2).sum() * (_B_CENTRED**2).sum()))


# --- 08 ---
# 08_conclusions.ipynb: at 0.9 photos 0 (a cat) and 3 (a dog) are called dogs; the wrong class
# gets >= 0.9 on photo 0 (cat, P(dog) 0.95) and photo 4 (dog, P(dog) 0.05).
_RESULT_08 = training.Evaluation(
    np.array([0, 0, 0, 1, 1, 1]), np.array([0.95, 0.6, 0.1, 0.92, 0.05, 0.5])
)


#: One right answer per registered task (notebook authors: add yours here).
EXAMPLES: dict[str, Example] = {
    "00.1": Example(42),
    "00.2": Example((-1.0, 1.0)),
    "00.3": Example("block_12_project"),
    "00.4": Example(3, {"files": _files([0, 1, 0, 0, 1])}),
    "00.5": Example(4.0, {"epoch_seconds": {"full": 10.0, "cut": 2.5}}),
    # --- 01 ---
    "01.1": Example(0),
    "01.2": Example(0.5, {"sizes": np.array([[300, 200], [100, 200], [210, 200]])}),
    "01.3": Example(90),
    "01.4": Example(1),
    "01.5": Example(3, {"info": _dataset_info(4, 10), "max_per_class": None}),
    # --- 02 ---
    "02.1": Example((5, 5, 1280)),
    "02.2": Example((2257984, 0.51)),
    "02.3": Example((0.68, 0.25)),
    "02.4": Example(147),
    # --- 03 ---
    "03.1": Example((132, 0.6)),
    "03.2": Example(
        0.9,
        {
            "run": SimpleNamespace(
                history={"accuracy": [0.6, 0.9, 1.0], "val_accuracy": [0.5, 0.9, 0.85]}
            )
        },
    ),
    "03.3": Example(
        0.1,
        {
            "bn_before": {"block_13_expand_BN/moving_mean": np.array([1.0, -2.0], "float32")},
            "bn_after": {"block_13_expand_BN/moving_mean": np.array([1.1, -2.2], "float32")},
        },
    ),
    # --- 04 ---
    "04.1": Example(2562),
    "04.2": Example(62721),
    "04.3": Example((28, 28, 32)),
    "04.4": Example((-1.008, -0.992)),
    # --- 05 ---
    "05.1": Example(0.75, {"cache": _cache_of(_linear_head())}),
    "05.2": Example((1, 2), {"result": _THRESHOLD_RESULT}),
    "05.3": Example(
        0.75, {"head": _linear_head(), "features": _HEAD_FEATURES, "labels": _HEAD_LABELS}
    ),
    "05.5": Example(0.25, {"model": _linear_head(-1.0), "cache": _cache_of(_linear_head())}),
    # --- 06 ---
    "06.1": Example(
        _plain_ascent(_TINY_FEATURES, "conv_relu", 1, 24, 3),
        {"net": _TINY_FEATURES, "layer": "conv_relu", "channel": 1, "size": 24, "steps": 3},
    ),
    "06.2": Example((2, 5), {"model": _bright_spot_classifier(), "photo": _bright_spot_photo()}),
    "06.3": Example(("block_15_project", 1033921)),
    "06.4": Example(_OCCLUSION_RIGHT, _OCCLUSION_CONTEXT),
    # --- 07 ---
    # 4096 photos x (4*4*5 + 4*4*3) numbers x 2 bytes = 1 MiB; the cats above the 2/3 quantile
    # (226.7) are photos 1 and 2, and only photo 1 is called a cat.
    "07.1": Example(1.0, {"model": _tiny_residual_cut(), "n_images": 4096}),
    "07.2": Example(0.5, {"evaluation": _BIASED_EVAL, "brightness": _BRIGHTNESS}),
    "07.3": Example(_R, {"evaluation": _BIASED_EVAL, "brightness": _BRIGHTNESS}),
    # --- 08 ---
    "08.1": Example(0.5, {"result": _RESULT_08}),
    "08.2": Example(2, {"result": _RESULT_08}),
}


def perturbed(value: Any, task: Task) -> Any:
    """A wrong answer next to a right one: beyond the task's tolerance and rounding."""
    if isinstance(value, (bool, np.bool_)):
        return not value
    if isinstance(value, numbers.Real):
        return value + 1 + 2 * task.abs_tol + 2 * task.rel_tol * abs(value)
    if isinstance(value, str):
        return value + "x"
    if isinstance(value, np.ndarray):
        wrong = value.astype(float)
        wrong.flat[0] = perturbed(float(wrong.flat[0]), task)
        return wrong
    if isinstance(value, dict):
        key = next(iter(value))
        return {**value, key: perturbed(value[key], task)}
    if isinstance(value, (list, tuple)):
        if not value:
            return type(value)([0])
        return type(value)([perturbed(value[0], task), *value[1:]])
    raise TypeError(f"add a perturbation for {type(value).__name__} answers to perturbed()")


@pytest.fixture
def lesson(monkeypatch):
    """The students' profile: wrong answers are reported, not raised."""
    monkeypatch.setenv("TL_PROFILE", "lesson")


@pytest.fixture
def smoke(monkeypatch):
    monkeypatch.setenv("TL_PROFILE", "smoke")


def _register(monkeypatch, task_id: str, task: Task) -> None:
    monkeypatch.setitem(exercises.TASKS, task_id, task)


# --------------------------------------------------------------------------------------------
# Every registered task (notebook authors' tasks included)
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("task_id", sorted(exercises.TASKS))
def test_every_task(task_id, capsys, monkeypatch):
    assert exercises.TASK_ID.match(task_id), f"task id {task_id!r} is not 'NN.K'"
    assert task_id in EXAMPLES, (
        f"task {task_id} has no example: add its right answer (and, for a computed task, an "
        "example context) to EXAMPLES in tests/test_exercises.py"
    )
    task, example = exercises.TASKS[task_id], EXAMPLES[task_id]
    assert task.hint.strip() and not task.hint.endswith(" "), "every task needs a hint"
    number = int(task_id.split(".")[1])
    monkeypatch.setenv("TL_PROFILE", "smoke")

    assert exercises.check(task_id, example.right, **example.context) is True
    assert capsys.readouterr().out == f"{number}. feladat: helyes!\n"

    assert exercises.check(task_id, None, **example.context) is None
    assert capsys.readouterr().out == f"{number}. feladat: még nincs kitöltve.\n"

    wrong = perturbed(copy.deepcopy(example.right), task)
    with pytest.raises(AssertionError, match=re.escape(task_id)):
        exercises.check(task_id, wrong, **example.context)
    printed = capsys.readouterr().out
    assert printed.startswith(f"{number}. feladat: nem egészen – ")
    hint = printed.split(" – ", 1)[1]
    assert not shows(example.right, hint), f"the hint {hint!r} gives the answer away"


def shows(answer: Any, text: str) -> bool:
    """Whether a hint shows the answer (a number as a word of its own, a string anywhere)."""
    if isinstance(answer, str):
        return answer.casefold() in text.casefold()
    if isinstance(answer, numbers.Real) and not isinstance(answer, bool):
        return re.search(rf"(?<![\d.]){re.escape(str(answer))}(?![\d])", text) is not None
    if isinstance(answer, (list, tuple)):
        return any(shows(item, text) for item in answer)
    return False


def test_example_tasks_cover_both_kinds():
    kinds = {task.answer_hash is None for task in exercises.TASKS.values()}
    assert kinds == {True, False}, "keep a hashed and a computed example task"


# --------------------------------------------------------------------------------------------
# check(): answers, printing, raising
# --------------------------------------------------------------------------------------------


def test_right_answer_is_accepted(lesson, capsys):
    assert exercises.check("00.1", 42) is True
    assert capsys.readouterr().out == "1. feladat: helyes!\n"


def test_wrong_answer_is_rejected_with_hint_and_no_answer(lesson, capsys):
    assert exercises.check("00.1", 41) is False
    out = capsys.readouterr().out
    assert out == f"1. feladat: nem egészen – {exercises.TASKS['00.1'].hint}\n"
    assert "42" not in out


def test_wrong_answer_raises_under_smoke(smoke, capsys):
    with pytest.raises(AssertionError, match="00.1.*TL_PROFILE=smoke"):
        exercises.check("00.1", 41)
    assert "nem egészen" in capsys.readouterr().out  # printed first, like a student sees it


@pytest.mark.parametrize("unfilled", [None, ...])
def test_unfilled_answer_never_raises(smoke, capsys, unfilled):
    assert exercises.check("00.1", unfilled) is None
    assert exercises.check("00.4", unfilled, files=_files([0])) is None
    assert capsys.readouterr().out == (
        "1. feladat: még nincs kitöltve.\n4. feladat: még nincs kitöltve.\n"
    )


def test_answer_of_unusable_type_is_wrong_not_an_error(lesson, capsys):
    assert exercises.check("00.1", object()) is False
    assert "számként, szövegként" in capsys.readouterr().out


def test_unknown_task_is_a_clear_error():
    with pytest.raises(exercises.ExerciseError, match=r"Ismeretlen feladat: '09\.9'.*00\.1"):
        exercises.check("09.9", 1)
    with pytest.raises(TypeError, match="szöveg legyen"):
        exercises.check(1.1, 1)


def test_computed_task_needs_exactly_its_context():
    with pytest.raises(exercises.ExerciseError, match="files=.*hiányzik: files"):
        exercises.check("00.4", 3)
    with pytest.raises(exercises.ExerciseError, match="fölösleges: history"):
        exercises.check("00.4", 3, files=_files([0]), history={})
    with pytest.raises(exercises.ExerciseError, match="fölösleges: files"):
        exercises.check("00.1", None, files=_files([0]))  # checked even when not filled in


def test_computed_task_uses_the_context(lesson, capsys):
    assert exercises.check("00.4", 2, files=_files([0, 0, 1])) is True
    assert exercises.check("00.4", 2, files=_files([0, 1, 1])) is False
    assert exercises.check("00.4", np.int64(1), files=_files([0, 1, 1])) is True
    assert exercises.check("00.4", 1.0, files=_files([0, 1, 1])) is True  # 1 == 1.0
    assert exercises.check("00.4", "1", files=_files([0, 1, 1])) is False
    assert exercises.check("00.4", True, files=_files([0, 1, 1])) is False  # not a number
    assert exercises.check("00.4", [1], files=_files([0, 1, 1])) is False
    assert "egyetlen számot várok" in capsys.readouterr().out.splitlines()[-1]


# --------------------------------------------------------------------------------------------
# Tolerance on a computed (hidden) value
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("abs_tol", "rel_tol", "answer", "right"),
    [
        (0.0, 0.0, 10.0, True),
        (0.0, 0.0, 10.000001, False),
        (0.5, 0.0, 10.5, True),  # the edge is inclusive
        (0.5, 0.0, 9.5, True),
        (0.5, 0.0, 10.5000001, False),
        (0.0, 0.25, 12.5, True),  # 25% of 10
        (0.0, 0.25, 7.5, True),
        (0.0, 0.25, 12.5001, False),
        (0.5, 0.25, 12.5, True),  # the larger tolerance applies
        (2.5, 0.01, 12.5, True),
        (2.5, 0.01, 12.6, False),
    ],
)
def test_tolerance_edges(monkeypatch, lesson, abs_tol, rel_tol, answer, right):
    _register(
        monkeypatch, "00.9", Task(hint="h", expected=lambda x: x, abs_tol=abs_tol, rel_tol=rel_tol)
    )
    assert exercises.check("00.9", answer, x=10.0) is right


def test_tolerance_is_relative_to_the_expected_value(monkeypatch, lesson):
    _register(monkeypatch, "00.9", Task(hint="h", expected=lambda x: x, rel_tol=0.1))
    assert exercises.check("00.9", 0.0, x=0.0) is True
    assert exercises.check("00.9", 1e-9, x=0.0) is False  # no tolerance around zero
    assert exercises.check("00.9", -11.0, x=-10.0) is True


def test_computed_sequences_and_strings(monkeypatch, lesson):
    _register(monkeypatch, "00.8", Task(hint="h", expected=lambda shape: tuple(shape)))
    assert exercises.check("00.8", [7, 7, 1280], shape=np.array([7, 7, 1280])) is True
    assert exercises.check("00.8", (7, 7), shape=np.array([7, 7, 1280])) is False
    _register(monkeypatch, "00.7", Task(hint="h", expected=lambda name: name))
    assert exercises.check("00.7", " Block_12_PROJECT", name="block_12_project") is True
    assert exercises.check("00.7", 12, name="block_12_project") is False


# --------------------------------------------------------------------------------------------
# Canonical form and hashes of fixed answers
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("a", "b", "decimals"),
    [
        (1, 1.0, None),
        (1, np.float32(1.0), None),
        (np.int64(7), 7, None),
        ((7, 7, 1280), [7, 7, 1280], None),
        ((7, 7, 1280), np.array([7, 7, 1280]), None),
        ([[1, 2], [3, 4]], np.array([[1.0, 2.0], [3.0, 4.0]]), None),
        ((-1.0, 1.0), [-0.999, 1.004], 2),
        (0.125, 0.12, 2),  # half to even on the exact binary value (0.125 is exact)
        (0.0, -0.001, 2),  # no "-0.00"
        (3.14159, 3.1416, 4),
        ("Block_12_Project", "  block_12_project ", None),
        ("két  szó", "KÉT szó", None),
        ("é", "e\u0301", None),  # NFC: é written as e + combining accent
        ({"cats": 250, "dogs": 250.0}, {"dogs": 250, "cats": 250}, None),
        ({3, 1, 2}, frozenset({1, 2, 3}), None),
    ],
)
def test_hash_normalisation_equal(a, b, decimals):
    assert exercises.answer_hash(a, decimals) == exercises.answer_hash(b, decimals)


@pytest.mark.parametrize(
    ("a", "b", "decimals"),
    [
        (1, 2, None),
        (0.1 + 0.2, 0.3, None),  # exact unless decimals are declared
        (1.006, 1.0, 2),
        (12.4, 12, None),
        ("1", 1, None),
        (True, 1, None),  # booleans are not numbers
        ((7, 7), (7, 7, 1), None),
        ([[1, 2]], [1, 2], None),
        ("block_12_project", "block_12 project", None),
    ],
)
def test_hash_normalisation_different(a, b, decimals):
    assert exercises.answer_hash(a, decimals) != exercises.answer_hash(b, decimals)


def test_hash_of_example_tasks_matches_registry():
    assert exercises.TASKS["00.1"].answer_hash == exercises.answer_hash(42)
    assert exercises.canonical((-1, 1), 2) == "[-1.00,1.00]"
    assert exercises.canonical(np.float64(2.5)) == "2.5"
    assert exercises.canonical(10**30) == "1" + "0" * 30  # big ints stay exact


def test_hash_rejects_bad_input():
    with pytest.raises(TypeError, match="canonical form"):
        exercises.answer_hash(object())
    with pytest.raises(ValueError, match="decimals"):
        exercises.answer_hash(1.0, decimals=-1)


def test_task_declaration_is_validated():
    with pytest.raises(ValueError, match="exactly one"):
        Task(hint="h")
    with pytest.raises(ValueError, match="exactly one"):
        Task(hint="h", answer_hash=exercises.answer_hash(1), expected=lambda: 1)
    with pytest.raises(ValueError, match="sha256"):
        Task(hint="h", answer_hash="42")
    with pytest.raises(ValueError, match="tolerance"):
        Task(hint="h", answer_hash=exercises.answer_hash(1), abs_tol=0.1)
    with pytest.raises(ValueError, match="decimals applies"):
        Task(hint="h", expected=lambda: 1, decimals=2)


def test_hash_command_line():
    result = subprocess.run(
        [sys.executable, "-m", "helpers.exercises", "hash", "(-1.0, 1.0)", "--decimals", "2"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "# kanonikus alak: [-1.00,1.00]",
        f'answer_hash="{exercises.TASKS["00.2"].answer_hash}", decimals=2,',
    ]
    assert exercises.main(["hash", "block_12_project"]) == 0  # a bare word is a string
