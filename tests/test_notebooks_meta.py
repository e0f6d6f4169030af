"""Static checks of every notebook, plus what the nbval runner does with a failing cell.

nbval executes the notebooks (``pytest`` collects ``notebooks/`` too); these tests check what
execution cannot: stripped outputs, the skeleton of the series, the import order of the setup
cell, and IPython magics. An unknown ``%magic`` only raises IPython's ``UsageError``, which the
kernel reports as an error; whether nbval then fails the cell depends on its version (0.11 does
not), so a typo such as ``%tensorbord`` could pass CI silently. That is why the magics are
checked here, statically, by our own checker (``unknown_magics``), whatever nbval does.
"""

from __future__ import annotations

import ast
import functools
import json
import os
import re
import subprocess
import sys
import textwrap
import unicodedata
from pathlib import Path

import nbformat
import pytest
from IPython.core.inputtransformer2 import TransformerManager

REPO = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))
NAME_PATTERN = re.compile(r"^\d\d_[a-z_]+\.ipynb$")
#: Markdown headings every notebook of the series has.
REQUIRED_SECTIONS = ("Mit fogsz megtanulni", "Összefoglalás", "Feladatok")
#: Packages that must not load before TF_CPP_MIN_LOG_LEVEL is set (helpers import keras lazily).
TF_PACKAGES = {"tensorflow", "keras", "tensorboard", "helpers"}
#: Cell magics whose body is IPython code (checked recursively).
CODE_CELL_MAGICS = {"capture", "time", "timeit", "prun", "debug"}

per_notebook = pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])


@functools.cache
def _read(path: Path) -> nbformat.NotebookNode:
    return nbformat.read(path, as_version=4)


def _code_cells(nb) -> list[tuple[int, str]]:
    return [(i, cell.source) for i, cell in enumerate(nb.cells) if cell.cell_type == "code"]


def _python(source: str) -> ast.Module:
    """Parse a cell the way IPython runs it (magics and ``!`` become ``get_ipython()`` calls)."""
    return ast.parse(TransformerManager().transform_cell(source))


def _nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


# --------------------------------------------------------------------------------------------
# Magics: the checker
# --------------------------------------------------------------------------------------------


def magic_calls(source: str) -> list[tuple[str, str, str]]:
    """Return ``(kind, name, argument line)`` for every magic in a cell, nested ones included.

    ``kind`` is ``"line"`` or ``"cell"``. ``!cmd`` is a shell escape, not a magic.
    """
    found = []
    for node in ast.walk(_python(source)):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        if node.func.attr not in ("run_line_magic", "run_cell_magic"):
            continue
        args = [a.value if isinstance(a, ast.Constant) else None for a in node.args]
        if not args or not isinstance(args[0], str):
            continue
        kind = "line" if node.func.attr == "run_line_magic" else "cell"
        line = args[1] if len(args) > 1 and isinstance(args[1], str) else ""
        found.append((kind, args[0], line))
        if (
            kind == "cell"
            and args[0] in CODE_CELL_MAGICS
            and len(args) > 2
            and isinstance(args[2], str)
        ):
            found += magic_calls(args[2])
    return found


def loaded_extensions(sources: list[str]) -> tuple[str, ...]:
    names = set()
    for source in sources:
        for kind, name, line in magic_calls(source):
            if kind == "line" and name in ("load_ext", "reload_ext"):
                names.update(line.split())
    return tuple(sorted(names))


_KNOWN_MAGICS_CODE = textwrap.dedent(
    """
    import json, sys
    from IPython.core.interactiveshell import InteractiveShell
    from ipykernel.zmqshell import KernelMagics

    shell = InteractiveShell.instance()
    shell.register_magics(KernelMagics)  # what a Jupyter kernel adds (%clear, %less, ...)
    for name in sys.argv[1:]:
        shell.extension_manager.load_extension(name)
    magics = shell.magics_manager.magics
    print(json.dumps({"line": sorted(magics["line"]), "cell": sorted(magics["cell"])}))
    """
)


@functools.cache
def known_magics(extensions: tuple[str, ...] = ()) -> dict[str, set[str]]:
    """The magics of a fresh IPython shell after loading ``extensions`` (in a subprocess, so that
    this test process keeps no IPython singleton or extension state)."""
    result = subprocess.run(
        [sys.executable, "-c", _KNOWN_MAGICS_CODE, *extensions],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    table = json.loads(result.stdout.strip().splitlines()[-1])
    return {kind: set(names) for kind, names in table.items()}


def unknown_magics(sources: list[str]) -> list[str]:
    """Magics in ``sources`` that IPython would not know, given the notebook's own %load_ext."""
    known = known_magics(loaded_extensions(sources))
    return [
        f"%{'%' if kind == 'cell' else ''}{name}"
        for source in sources
        for kind, name, _ in magic_calls(source)
        if name not in known[kind]
    ]


def test_magic_checker_flags_unknown_magic():
    assert unknown_magics(["x = 1\n%not_a_magic --flag\nprint(x)"]) == ["%not_a_magic"]
    assert unknown_magics(["%%not_a_cell_magic\nx = 1"]) == ["%%not_a_cell_magic"]
    assert unknown_magics(["%%capture out\n%tensorbord --logdir logs"]) == ["%tensorbord"]
    assert unknown_magics(["if True:\n    %not_a_magic"]) == ["%not_a_magic"]


def test_magic_checker_accepts_known_magics_and_shell_escapes():
    cells = [
        "%matplotlib inline\n%pip install -q numpy\n%cd /tmp\n!ls -la",
        "%%time\nx = sum(range(10))",
        "%%capture\n%env HOME",
        "files = !ls\n%clear",
    ]
    assert unknown_magics(cells) == []


def test_magic_checker_loads_the_notebooks_own_extensions():
    assert unknown_magics(["%tensorboard --logdir logs"]) == ["%tensorboard"]
    assert unknown_magics(["%load_ext tensorboard", "%tensorboard --logdir logs"]) == []


# --------------------------------------------------------------------------------------------
# Per-notebook static checks
# --------------------------------------------------------------------------------------------


@per_notebook
def test_valid_nbformat(path):
    nb = _read(path)
    nbformat.validate(nb)
    assert nb.nbformat == 4


@per_notebook
def test_file_name(path):
    assert NAME_PATTERN.match(path.name), f"{path.name} does not match {NAME_PATTERN.pattern}"


@per_notebook
def test_outputs_are_stripped(path):
    for i, cell in enumerate(_read(path).cells):
        if cell.cell_type == "code":
            assert cell.outputs == [], f"cell {i} has outputs"
            assert cell.execution_count is None, f"cell {i} has an execution count"


@per_notebook
def test_first_cell_is_title_with_colab_badge(path):
    first = _read(path).cells[0]
    assert first.cell_type == "markdown"
    assert first.source.startswith("# ")
    assert "colab.research.google.com" in first.source
    assert f"notebooks/{path.name}" in first.source, "the Colab link points at another notebook"


@per_notebook
@pytest.mark.parametrize("heading", REQUIRED_SECTIONS)
def test_required_sections(path, heading):
    markdown = [_nfc(c.source) for c in _read(path).cells if c.cell_type == "markdown"]
    assert any(_nfc(heading) in text for text in markdown), f"no markdown cell with {heading!r}"


def _sets_log_level(node: ast.AST) -> bool:
    name = "TF_CPP_MIN_LOG_LEVEL"
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        args = [a.value for a in node.args if isinstance(a, ast.Constant)]
        if node.func.attr in ("setdefault", "putenv", "__setitem__") and args[:1] == [name]:
            return True
        if node.func.attr == "run_line_magic" and len(args) > 1 and args[0] in ("env", "set_env"):
            return str(args[1]).replace("=", " ").split()[:1] == [name]
    if isinstance(node, ast.Assign):
        return any(
            isinstance(t, ast.Subscript)
            and isinstance(t.slice, ast.Constant)
            and t.slice.value == name
            for t in node.targets
        )
    return False


def _imports_tf(node: ast.AST) -> bool:
    if isinstance(node, ast.Import):
        return any(alias.name.split(".")[0] in TF_PACKAGES for alias in node.names)
    if isinstance(node, ast.ImportFrom):
        return node.level == 0 and (node.module or "").split(".")[0] in TF_PACKAGES
    return False


@per_notebook
def test_log_level_is_set_before_tensorflow_is_imported(path):
    first_set = first_import = None
    for index, source in _code_cells(_read(path)):
        for node in ast.walk(_python(source)):
            where = (index, getattr(node, "lineno", 0))
            if _sets_log_level(node) and (first_set is None or where < first_set):
                first_set = where
            if _imports_tf(node) and (first_import is None or where < first_import):
                first_import = where
    assert first_set is not None, "no cell sets TF_CPP_MIN_LOG_LEVEL"
    assert first_import is not None, "the notebook never imports tensorflow/keras/helpers?"
    assert first_set < first_import, (
        f"TF_CPP_MIN_LOG_LEVEL is set at (cell, line) {first_set}, after the first import of "
        f"{'/'.join(sorted(TF_PACKAGES))} at {first_import}"
    )


@per_notebook
def test_no_star_imports_and_no_sys_path(path):
    for index, source in _code_cells(_read(path)):
        for node in ast.walk(_python(source)):
            if isinstance(node, ast.ImportFrom):
                assert all(a.name != "*" for a in node.names), f"cell {index}: import *"
                if node.module == "sys":
                    assert all(a.name != "path" for a in node.names), f"cell {index}: sys.path"
            if isinstance(node, ast.Attribute) and node.attr == "path":
                assert not (isinstance(node.value, ast.Name) and node.value.id == "sys"), (
                    f"cell {index} touches sys.path; install the package instead"
                )


@per_notebook
def test_magics_are_known(path):
    sources = [source for _, source in _code_cells(_read(path))]
    assert unknown_magics(sources) == [], (
        "unknown IPython magics (the kernel only reports a UsageError, which nbval may let through)"
    )


@per_notebook
def test_code_cells_parse(path):
    for index, source in _code_cells(_read(path)):
        try:
            _python(source)
        except SyntaxError as exc:
            pytest.fail(f"cell {index} is not valid (I)Python: {exc}")


def _unguarded_trys(source: str) -> list[str]:
    """``try`` blocks whose ``else`` does not raise: they would pass if the error went away."""
    found = []
    for node in ast.walk(_python(source)):
        if isinstance(node, ast.Try) and not any(
            isinstance(inner, ast.Raise) for stmt in node.orelse for inner in ast.walk(stmt)
        ):
            handled = ", ".join(ast.unparse(h.type) if h.type else "*" for h in node.handlers)
            found.append(f"try … except {handled or '(finally only)'}")
    return found


def test_unguarded_try_detector():
    shown = "try:\n    f()\nexcept ValueError as err:\n    print(err)\n"
    assert _unguarded_trys(shown) == ["try … except ValueError"]
    assert _unguarded_trys(shown + "else:\n    raise AssertionError('no error')\n") == []
    nested = "with x:\n    " + shown.replace("\n", "\n    ").rstrip()
    assert _unguarded_trys(nested) == ["try … except ValueError"]


@per_notebook
def test_show_the_error_cells_fail_when_the_error_disappears(path):
    """A cell that shows an error by catching it must fail if the error is no longer raised."""
    problems = [
        f"cell {index}: {what} has no 'else: raise AssertionError(...)'"
        for index, source in _code_cells(_read(path))
        for what in _unguarded_trys(source)
    ]
    assert not problems, "\n".join(problems)


# --------------------------------------------------------------------------------------------
# What the nbval runner does with a failing cell
# --------------------------------------------------------------------------------------------


def _run_nbval(tmp_path: Path, cells: list[str]) -> subprocess.CompletedProcess:
    nb = nbformat.v4.new_notebook()
    nb.metadata = {
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}
    }
    nb.cells = [nbformat.v4.new_markdown_cell("# Próba")] + [
        nbformat.v4.new_code_cell(source) for source in cells
    ]
    notebook = tmp_path / "probe.ipynb"
    nbformat.write(nb, notebook)
    # An empty ini file in tmp_path: the repository's addopts and conftest.py stay out of it.
    ini = tmp_path / "pytest.ini"
    ini.write_text("[pytest]\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    command = [
        sys.executable, "-m", "pytest", "--nbval-lax", "--nbval-current-env",
        "-p", "no:cacheprovider", "-c", str(ini), "--rootdir", str(tmp_path), str(notebook),
    ]  # fmt: skip
    return subprocess.run(
        command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )


NBVAL_CASES = {
    "passing": (["x = 1\nprint(x)", "assert x == 1"], 0),
    "raising": (["x = 1", "raise ValueError('szándékos hiba')"], 1),
}


@pytest.mark.parametrize("case", sorted(NBVAL_CASES))
def test_nbval_runner(tmp_path, case):
    cells, expected = NBVAL_CASES[case]
    result = _run_nbval(tmp_path, cells)
    output = result.stdout + result.stderr
    assert "probe.ipynb" in output, output[-3000:]  # the notebook really was collected
    if expected == 0:
        assert result.returncode == 0, output[-3000:]
    else:
        assert result.returncode != 0, output[-3000:]
        assert "szándékos hiba" in output


# --------------------------------------------------------------------------------------------
# A lecture, not a report: cells that fit a projected screen, checks out of the teaching cells,
# exercises with a self-check or a model answer
# --------------------------------------------------------------------------------------------

#: Longest cell that still fits a projected screen, per cell type.
MAX_LINES = {"code": 25, "markdown": 20}
#: Tags of the cells that may hold asserts (section checks) or call the self-checks.
CHECK, SELF_CHECK, SOLUTION, MODEL_ANSWER = "check", "self-check", "solution", "model-answer"
_TASK_CALL = re.compile(r"exercises\.check\(\s*[\"'](\d\d\.\d+)[\"']")


def _tags(cell) -> set[str]:
    return set(cell.get("metadata", {}).get("tags", []))


@per_notebook
def test_cells_fit_a_projected_screen(path):
    too_long = [
        f"cell {i} ({cell.cell_type}, {len(cell.source.splitlines())} lines)"
        for i, cell in enumerate(_read(path).cells)
        if len(cell.source.splitlines()) > MAX_LINES.get(cell.cell_type, 10**6)
    ]
    assert not too_long, f"longer than {MAX_LINES}: {too_long}"


def asserting_lines(source: str) -> list[int]:
    """Lines of a cell with an ``assert`` statement or an ``assert_*`` call (np.testing & co)."""
    lines = []
    for node in ast.walk(_python(source)):
        if isinstance(node, ast.Assert):
            lines.append(node.lineno)
        elif isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name.startswith("assert_"):
                lines.append(node.lineno)
    return lines


def test_assert_finder():
    assert asserting_lines("x = 1\nassert x == 1") == [2]
    assert asserting_lines("np.testing.assert_allclose(a, b)") == [1]
    assert asserting_lines("if x:\n    assert_equal(x, 1)") == [2]
    assert asserting_lines("print('assert')\nasserted = True") == []


@per_notebook
def test_asserts_only_in_check_cells(path):
    teaching = [
        f"cell {i}, line {line}"
        for i, cell in enumerate(_read(path).cells)
        if cell.cell_type == "code" and CHECK not in _tags(cell)
        for line in asserting_lines(cell.source)
    ]
    assert not teaching, (
        f"asserts in teaching cells (move them into a cell tagged {CHECK!r}): {teaching}"
    )


@per_notebook
def test_check_cells_say_what_they_check_and_report(path):
    checks = [(i, c) for i, c in enumerate(_read(path).cells) if CHECK in _tags(c)]
    assert checks, "no section check cell (tagged 'check')"
    for i, cell in checks:
        assert cell.cell_type == "code", f"cell {i}: only code cells can be checks"
        assert _nfc(cell.source).startswith(_nfc("# Ellenőrzés")), (
            f"cell {i}: a check cell starts with '# Ellenőrzés: …' (what it checks)"
        )
        calls = [
            n
            for n in ast.walk(_python(cell.source))
            if isinstance(n, ast.Call) and getattr(n.func, "id", "") == "print"
        ]
        assert calls, f"cell {i}: a check cell prints a one-line verdict"


@per_notebook
def test_every_exercise_has_a_self_check_or_a_model_answer(path):
    cells = _read(path).cells
    solutions = [i for i, c in enumerate(cells) if SOLUTION in _tags(c)]
    assert solutions, "no exercise with a model solution (cells tagged 'solution')"
    for k, start in enumerate(solutions):
        end = solutions[k + 1] if k + 1 < len(solutions) else len(cells)
        following = [_tags(c) for c in cells[start + 1 : end]]
        assert any(SELF_CHECK in t or MODEL_ANSWER in t for t in following), (
            f"the exercise solved in cell {start} has neither a self-check nor a model answer"
        )


@per_notebook
def test_self_checks_name_this_notebooks_registered_tasks(path):
    from helpers import exercises

    number = path.name[:2]
    used = [
        task
        for cell in _read(path).cells
        if SELF_CHECK in _tags(cell)
        for task in _TASK_CALL.findall(cell.source)
    ]
    assert used, "no self-check calls exercises.check(...)"
    assert all(task.startswith(number + ".") for task in used), used
    assert all(task in exercises.TASKS for task in used), [
        t for t in used if t not in exercises.TASKS
    ]
    registered = sorted(t for t in exercises.TASKS if t.startswith(number + "."))
    assert sorted(set(used)) == registered, f"registered but unused: {set(registered) - set(used)}"


def test_colab_badges_and_install_cells_match_the_repository_address():
    from helpers import classroom

    assert classroom.main(["badges", "--check"]) == 0
