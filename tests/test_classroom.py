"""helpers.classroom: student copies, teacher notes, the HTML edition and the Colab badges.

Fast tests on small synthetic notebooks written into tmp_path; the tests over the real notebooks
only read them (``badges`` rewrites copies). A few tests start a Jupyter kernel (nbval, nbclient):
a few seconds each.
"""

from __future__ import annotations

import ast
import email.message
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from helpers import classroom
from tests.test_notebooks_meta import unknown_magics

REPO = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))
KERNELSPEC = {"display_name": "Python 3", "language": "python", "name": "python3"}

SOLUTION_1 = """# 1. feladat – megoldás
factors = (6, 7)
product = factors[0] * factors[1]
first, (second, *rest) = 1, (2, 3, 4)
if product > 0:
    checked = True


def helper():
    hidden = 2
    return hidden"""
SOLUTION_1_NAMES = ["factors", "product", "first", "second", "rest", "checked"]
SOLUTION_3 = "# 3. feladat – megoldás\nprint(6 * 7)"
OLD_LINK = "https://colab.research.google.com/github/old/place/blob/main/notebooks/01_x.ipynb"
MODEL_ANSWER = "**Mintaválasz:** a TITKOS_MINTAVÁLASZ szövege."


def _cell(kind: str, source: str, *tags: str):
    make = nbformat.v4.new_code_cell if kind == "code" else nbformat.v4.new_markdown_cell
    cell = make(source)
    if tags:
        cell.metadata["tags"] = list(tags)
    return cell


def synthetic_notebook(solution: str = SOLUTION_1) -> nbformat.NotebookNode:
    """A miniature of the series' layout: title + badge, install cell, teaching, exercises."""
    nb = nbformat.v4.new_notebook()
    nb.metadata = {"kernelspec": dict(KERNELSPEC), "language_info": {"name": "python"}}
    taught = _cell("code", "x = 2\nprint('tanítás', x)")
    taught.outputs = [nbformat.v4.new_output("stream", name="stdout", text="tanítás 2\n")]
    taught.execution_count = 3
    nb.cells = [
        _cell(
            "markdown",
            f"# 99 · Próba\n\n[![Megnyitás Colabban]({classroom.BADGE_IMAGE})]({OLD_LINK})",
        ),
        _cell("code", "import sys\n\nif 'google.colab' in sys.modules:\n    pass"),
        taught,
        _cell("code", "# Ellenőrzés: x\nassert x == 2\nprint('rendben')", "check"),
        _cell("markdown", "## Feladatok"),
        _cell("markdown", "1. Mennyi hat szor hét? Írd a `product` változóba."),
        _cell("code", solution, "solution"),
        _cell(
            "code",
            "from helpers import exercises\n\nexercises.check('00.1', product)",
            "self-check",
        ),
        _cell("markdown", "2. Miért nem tanítunk mindig nulláról?"),
        _cell("markdown", MODEL_ANSWER, "model-answer"),
        _cell("markdown", "3. Írd ki a szorzatot."),
        _cell("code", SOLUTION_3, "solution", "nbval-skip"),
    ]
    return nb


def write(nb, path: Path) -> Path:
    nbformat.write(nb, path)
    return path


@pytest.fixture
def source_dir(tmp_path) -> Path:
    folder = tmp_path / "notebooks"
    folder.mkdir()
    write(synthetic_notebook(), folder / "99_probe.ipynb")
    return folder


def _run_nbval(tmp_path: Path, notebooks: list[Path]) -> subprocess.CompletedProcess:
    """Run nbval like the suite does, with an empty ini (see test_notebooks_meta._run_nbval)."""
    ini = tmp_path / "pytest.ini"
    ini.write_text("[pytest]\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env["TL_PROFILE"] = "smoke"
    command = [
        sys.executable, "-m", "pytest", "-v", "--nbval-lax", "--nbval-current-env",
        "-p", "no:cacheprovider", "-c", str(ini), "--rootdir", str(tmp_path),
        *map(str, notebooks),
    ]  # fmt: skip
    return subprocess.run(
        command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
    )


# --------------------------------------------------------------------------------------------
# Student copies
# --------------------------------------------------------------------------------------------


def test_placeholder_assigns_none_to_exactly_the_solution_names():
    assert classroom.assigned_names(SOLUTION_1) == SOLUTION_1_NAMES
    assert classroom.placeholder(SOLUTION_1).splitlines() == [
        "# 1. feladat – a te megoldásod",
        classroom.PLACEHOLDER_HINT,
        *[f"{name} = None" for name in SOLUTION_1_NAMES],
    ]
    assert classroom.placeholder(SOLUTION_3).splitlines() == [
        "# 3. feladat – a te megoldásod",
        classroom.PLACEHOLDER_HINT,
    ]


def test_assigned_names_cover_annotations_augmented_and_magics():
    source = "total: int = 0\ntotal += 1\n%time count = 3\nobj.attr = 1\nd['k'] = 2\n!ls"
    assert classroom.assigned_names(source) == ["total"]


def test_assigned_names_keep_blank_lines_inside_a_function():
    """A blank line in a function body is not a magic: turning it into ``pass`` at column 0 would
    end the function and make the next indented line a syntax error (07's JPEG exercise)."""
    source = "def f(x):\n    y = x + 1\n\n    return y\n\n\nresult = f(1)"
    assert classroom.assigned_names(source) == ["result"]
    assert classroom.placeholder("# 5. feladat – megoldás\n" + source).endswith("result = None")


def test_student_copy(source_dir, tmp_path):
    out = tmp_path / "diak"
    assert (
        classroom.main(["student", str(out), "--notebooks", str(source_dir / "99_probe.ipynb")])
        == 0
    )
    original = nbformat.read(source_dir / "99_probe.ipynb", as_version=4)
    copy = nbformat.read(out / "99_probe.ipynb", as_version=4)
    nbformat.validate(copy)
    text = "\n".join(cell.source for cell in copy.cells)
    assert "factors[0] * factors[1]" not in text and "print(6 * 7)" not in text
    assert "TITKOS_MINTAVÁLASZ" not in text
    assert all("solution" not in cell.metadata.get("tags", []) for cell in copy.cells)
    assert all("model-answer" not in cell.metadata.get("tags", []) for cell in copy.cells)
    for cell in copy.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None
    assert len(copy.cells) == len(original.cells) - 1  # only the model answer went
    assert copy.metadata == original.metadata
    assert copy.cells[0].source == original.cells[0].source  # the title and badge stay
    placeholder = copy.cells[6]
    assert placeholder.id == original.cells[6].id
    assert [line for line in placeholder.source.splitlines() if "=" in line] == [
        f"{name} = None" for name in SOLUTION_1_NAMES
    ]
    assert copy.cells[-1].metadata["tags"] == ["nbval-skip"]  # other tags stay
    assert [c.metadata.get("tags") for c in copy.cells[3:8]] == [
        ["check"],
        None,
        None,
        None,
        ["self-check"],
    ]
    assert original.cells[2].outputs, "the original must not change"


def test_student_copy_runs_under_nbval_and_a_drifted_solution_fails(source_dir, tmp_path):
    out = tmp_path / "diak"
    classroom.write_student_copies(out, [source_dir / "99_probe.ipynb"])
    drifted = write(
        synthetic_notebook(SOLUTION_1.replace("factors[1]", "8")), tmp_path / "drift.ipynb"
    )
    original = source_dir / "99_probe.ipynb"
    result = _run_nbval(tmp_path, [out / "99_probe.ipynb", original, drifted])
    output = result.stdout + result.stderr
    # nbval's -v lines read "diak/99_probe::ipynb::Cell 4 PASSED"
    failed = set(re.findall(r"^(\S+)::ipynb::Cell \d+ FAILED", output, re.M))
    passed = set(re.findall(r"^(\S+)::ipynb::Cell \d+ PASSED", output, re.M))
    assert failed == {"drift"}, output[-3000:]
    assert {"diak/99_probe", "notebooks/99_probe"} <= passed, output[-3000:]
    assert "00.1" in output  # the drifted solution's AssertionError names its task


def test_student_copy_self_check_says_not_filled_in(source_dir, tmp_path):
    classroom.write_student_copies(tmp_path / "diak", [source_dir / "99_probe.ipynb"])
    executed, _ = classroom.execute(tmp_path / "diak" / "99_probe.ipynb", timeout=120)
    check_cell = next(c for c in executed.cells if "self-check" in c.metadata.get("tags", []))
    assert check_cell.outputs[0].text == "1. feladat: még nincs kitöltve.\n"


def test_student_refuses_to_write_into_the_notebook_folder(source_dir, capsys):
    notebooks = ["--notebooks", str(source_dir / "99_probe.ipynb")]
    for target in (source_dir, source_dir / "diak", REPO / "notebooks" / "diak"):
        assert classroom.main(["student", str(target), *notebooks]) == 1
        assert "nem lehet" in capsys.readouterr().err
    assert not (source_dir / "diak").exists() and not (REPO / "notebooks" / "diak").exists()


def test_solution_tag_on_markdown_is_an_error(tmp_path):
    nb = synthetic_notebook()
    nb.cells.append(_cell("markdown", "megoldás", "solution"))
    with pytest.raises(classroom.ClassroomError, match="13. cella.*model-answer"):
        classroom.student_copy(nb, "x.ipynb")


# --------------------------------------------------------------------------------------------
# Teacher notes
# --------------------------------------------------------------------------------------------


def test_teacher_notes(source_dir, tmp_path):
    out = tmp_path / "tanar"
    assert (
        classroom.main(["teacher", str(out), "--notebooks", str(source_dir / "99_probe.ipynb")])
        == 0
    )
    notes = (out / "99_probe.md").read_text(encoding="utf-8")
    assert notes.startswith("# Tanári jegyzet – 99 · Próba\n")
    assert "## 1. feladat\n\n> ## Feladatok\n>\n> 1. Mennyi hat szor hét?" in notes
    assert f"### Mintamegoldás\n\n```python\n{SOLUTION_1}\n```" in notes
    assert "> 2. Miért nem tanítunk mindig nulláról?\n\n### Mintaválasz\n\n" + MODEL_ANSWER in notes
    assert (
        f"## 3. feladat\n\n> 3. Írd ki a szorzatot.\n\n### Mintamegoldás\n\n```python\n{SOLUTION_3}"
        in notes
    )
    assert [line for line in notes.splitlines() if line.startswith("## ")] == [
        "## 1. feladat", "## 2. feladat", "## 3. feladat"
    ]  # fmt: skip


def test_teacher_notes_without_exercises_say_so(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [_cell("markdown", "# 98 · Üres"), _cell("code", "x = 1")]
    notes = classroom.teacher_notes(nb, "98_empty.ipynb")
    assert "nincs mintamegoldásos feladat" in notes


def test_model_answer_after_self_check_joins_its_exercise():
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        _cell("markdown", "1. Mennyi?"),
        _cell("code", "# 1. feladat – megoldás\nn = 1", "solution"),
        _cell("code", "exercises.check('00.1', n)", "self-check"),
        _cell("markdown", "Miért ennyi: mert `n` egy.", "model-answer"),
    ]
    (exercise,) = classroom.exercises_of(nb)
    assert exercise.text == ["1. Mennyi?"] and exercise.label == "1. feladat"
    assert exercise.model_answers == [("markdown", "Miért ennyi: mert `n` egy.")]


# --------------------------------------------------------------------------------------------
# HTML edition
# --------------------------------------------------------------------------------------------


def test_html_export_embeds_figures_and_widget_state(tmp_path, capfd):
    nb = nbformat.v4.new_notebook()
    nb.metadata = {"kernelspec": dict(KERNELSPEC)}
    nb.cells = [
        _cell("markdown", "# 97 · Ábra"),
        _cell("code", "import matplotlib.pyplot as plt\n\nplt.plot([1, 3, 2])\nplt.show()"),
        _cell(
            "code", "import ipywidgets as widgets\n\nwidgets.IntSlider(value=7, description='k')"
        ),
        _cell("code", "import os\n\nprint('mappa:', os.getcwd())"),
        _cell("code", "raise RuntimeError('ezt nem futtatjuk')", "nbval-skip"),
    ]
    folder = tmp_path / "nbs"
    folder.mkdir()
    path = write(nb, folder / "97_figure.ipynb")
    assert classroom.main(["html", str(tmp_path / "html"), "--notebooks", str(path)]) == 0
    printed, errors = capfd.readouterr()  # file descriptors: the kernel's output, too
    assert re.search(r"^97_figure\.ipynb … \d+ s \(HTML: [\d,]+ MiB\)$", printed, re.M), printed
    assert errors == "", "the kernel's own log lines must not break the progress lines"
    page = (tmp_path / "html" / "97_figure.html").read_text(encoding="utf-8")
    assert "data:image/png;base64," in page
    assert "application/vnd.jupyter.widget-state+json" in page and '"value": 7' in page
    assert f"mappa: {folder.resolve()}" in page  # the kernel ran in the notebook's folder
    index = (tmp_path / "html" / "index.html").read_text(encoding="utf-8")
    assert '<a href="97_figure.html">97 · Ábra</a>' in index


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("1 / 0", "3. cella ('1 / 0'): ZeroDivisionError: division by zero"),
        ("import time\n\ntime.sleep(60)", "3. cella ('import time'): túllépte a cellánkénti"),
        ("import os\n\nos._exit(3)", "3. cella ('import os'): DeadKernelError"),
    ],
    ids=["error", "timeout", "dead_kernel"],
)
def test_html_stops_at_a_failing_cell_and_names_it(tmp_path, capsys, source, message):
    nb = nbformat.v4.new_notebook()
    nb.metadata = {"kernelspec": dict(KERNELSPEC)}
    nb.cells = [_cell("markdown", "# 96 · Hiba"), _cell("code", "x = 1"), _cell("code", source)]
    path = write(nb, tmp_path / "96_error.ipynb")
    later = write(synthetic_notebook(), tmp_path / "99_later.ipynb")
    argv = ["html", str(tmp_path / "html"), "--timeout", "2", "--notebooks", str(path), str(later)]
    assert classroom.main(argv) == 1
    captured = capsys.readouterr()
    assert f"Megállt: 96_error.ipynb, {message}" in captured.err
    assert "99_later" not in captured.out
    assert not (tmp_path / "html" / "index.html").exists()


# --------------------------------------------------------------------------------------------
# Badges and the Colab install cell
# --------------------------------------------------------------------------------------------


def _pyproject_repository() -> str:
    match = re.search(r'^Repository = "(.+)"$', (REPO / "pyproject.toml").read_text(), re.M)
    return match.group(1)


def test_repository_url_from_the_checkout():
    url = classroom.repository_url()
    assert url == _pyproject_repository()
    text = (REPO / "pyproject.toml").read_text(encoding="utf-8")
    assert classroom._repository_from_text(text) == url  # the Python 3.10 path


def test_repository_from_text_reads_only_project_urls():
    text = (
        '[project]\nname = "x"\nRepository = "wrong"\n\n[project.urls]\n# comment\n'
        'Homepage = "https://h"\nRepository = "https://github.com/a/b"\n\n[tool.x]\n'
        'Repository = "wrong too"\n'
    )
    assert classroom._repository_from_text(text) == "https://github.com/a/b"
    assert classroom._repository_from_text('[project]\nname = "x"\n') is None


def test_repository_url_from_package_metadata(monkeypatch, tmp_path):
    metadata = email.message.Message()
    metadata["Name"] = "helpers"
    metadata["Project-URL"] = "Homepage, https://example.com"
    metadata["Project-URL"] = "Repository, https://github.com/someone/else"
    monkeypatch.setattr(classroom, "_CHECKOUT", tmp_path)  # no pyproject.toml beside the package
    monkeypatch.setattr(classroom.importlib.metadata, "metadata", lambda name: metadata)
    assert classroom.repository_url() == "https://github.com/someone/else"
    del metadata["Project-URL"]
    with pytest.raises(classroom.ClassroomError, match="Nem találom a repó címét"):
        classroom.repository_url()


def test_colab_url_needs_github():
    url = classroom.colab_url("https://github.com/o/r.git", "01_x.ipynb")
    assert url == "https://colab.research.google.com/github/o/r/blob/main/notebooks/01_x.ipynb"
    with pytest.raises(classroom.ClassroomError, match="GitHub"):
        classroom.colab_url("https://gitlab.com/o/r", "01_x.ipynb")


def test_install_cell_template():
    source = classroom.install_cell("https://github.com/o/r")
    lines = source.splitlines()
    assert len(lines) <= 8 and max(map(len, lines)) <= 100
    assert lines[-1] == '    %pip install -q "helpers @ git+https://github.com/o/r"'
    assert "clone" not in source and "%cd" not in source
    assert unknown_magics([source]) == []
    # Outside Colab it does nothing: run its Python form with the magics as calls that fail.
    body = source.replace("%pip", "raise AssertionError  #")
    exec(compile(ast.parse(body), "<install cell>", "exec"), {})


def test_badges_check_flags_and_fix_repairs(source_dir, capsys):
    path = source_dir / "99_probe.ipynb"
    no_install = synthetic_notebook()
    del no_install.cells[1]
    other = write(no_install, source_dir / "98_other.ipynb")
    args = ["--notebooks", str(path), str(other)]
    assert classroom.main(["badges", "--check", *args]) == 1
    report = capsys.readouterr().out
    assert "99_probe.ipynb: a Colab-jelvény hiányzik, vagy nem ide mutat" in report
    assert "99_probe.ipynb: az első kódcella (a Colab-telepítő) eltér a sablontól" in report
    assert "98_other.ipynb: nincs Colab-telepítő cella" in report
    assert OLD_LINK in nbformat.read(path, as_version=4).cells[0].source  # --check wrote nothing

    assert classroom.main(["badges", *args]) == 0
    assert classroom.main(["badges", "--check", *args]) == 0
    repository = classroom.repository_url()
    for notebook in (path, other):
        nb = nbformat.read(notebook, as_version=4)
        nbformat.validate(nb)
        expected_badge = classroom.badge_markdown(repository, notebook.name)
        assert nb.cells[0].source == f"# 99 · Próba\n\n{expected_badge}"
        assert nb.cells[1].source == classroom.install_cell(repository)
        assert nb.cells[2].source == "x = 2\nprint('tanítás', x)"


def test_badges_on_copies_of_the_real_notebooks(tmp_path, capsys):
    copies = [Path(shutil.copy(path, tmp_path / path.name)) for path in NOTEBOOKS]
    assert classroom.main(["badges", "--notebooks", *map(str, copies)]) == 0
    assert classroom.main(["badges", "--check", "--notebooks", *map(str, copies)]) == 0
    for original, copy in zip(NOTEBOOKS, copies, strict=True):
        before = nbformat.read(original, as_version=4)
        after = nbformat.read(copy, as_version=4)
        assert len(after.cells) == len(before.cells)
        assert after.cells[2:] == before.cells[2:], f"{copy.name}: only the first two cells change"
        assert f"notebooks/{copy.name})" in after.cells[0].source


# --------------------------------------------------------------------------------------------
# The real notebooks (meaningful once their exercises are tagged)
# --------------------------------------------------------------------------------------------


def _lines(source: str) -> set[str]:
    return {line.strip() for line in source.splitlines() if line.strip()}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_real_student_copy_hides_solutions(path):
    nb = nbformat.read(path, as_version=4)
    hidden = [c for c in nb.cells if {"solution", "model-answer"} & set(c.metadata.get("tags", []))]
    public = set().union(*(_lines(c.source) for c in nb.cells if c not in hidden))
    secret = set().union(set(), *(_lines(c.source) for c in hidden)) - public
    secret = {line for line in secret if not line.startswith("#")}  # comments are not solutions
    copy = classroom.student_copy(nb, path.name)
    shown = set().union(*(_lines(c.source) for c in copy.cells))
    assert not [
        c for c in copy.cells if {"solution", "model-answer"} & set(c.metadata.get("tags", []))
    ]
    assert not secret & shown, f"solution text in the student copy: {sorted(secret & shown)[:3]}"
    print(f"{path.name}: {len(hidden)} solution/model-answer cells, {len(secret)} lines checked")


def _bound_names(source: str) -> set[str]:
    tree = ast.parse(classroom._without_magics(source))
    names = set(classroom.assigned_names(source))
    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names |= {(alias.asname or alias.name).split(".")[0] for alias in node.names}
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.For, ast.With)):
            names |= {
                n.id
                for n in ast.walk(node)
                if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)
            }
    return names


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_real_solutions_bind_only_new_names(path):
    """A placeholder sets the solution's names to None: they must not be names later cells of the
    lesson rely on, i.e. names bound before the solution cell."""
    bound: set[str] = set()
    for index, cell in enumerate(nbformat.read(path, as_version=4).cells):
        if cell.cell_type != "code":
            continue
        if "solution" in cell.metadata.get("tags", []):
            rebound = set(classroom.assigned_names(cell.source)) & bound
            assert not rebound, f"cell {index + 1}: the solution rebinds {sorted(rebound)}"
        bound |= _bound_names(cell.source)


def test_exercise_text_starts_at_the_last_heading():
    # The summary in front of "## Feladatok" is not part of the first exercise's text.
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        _cell("markdown", "## Összefoglalás\n\n- a lényeg\n\n## Feladatok\n\n1. Mennyi?"),
        _cell("markdown", "Tipp: számolj."),
        _cell("code", "# 1. feladat – megoldás\nn = 1", "solution"),
    ]
    (exercise,) = classroom.exercises_of(nb)
    assert exercise.text == ["## Feladatok\n\n1. Mennyi?", "Tipp: számolj."]


def test_student_then_teacher_is_the_student_copy_followed_by_the_exercises():
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        _cell("markdown", "# 96 · Próba"),
        _cell("code", "x = 6"),
        _cell("markdown", "## Feladatok\n\n1. Mennyi x * 7?"),
        _cell("code", "# 1. feladat – megoldás\nanswer = x * 7", "solution"),
        _cell("code", "exercises.check('00.1', answer)", "self-check"),
        _cell("markdown", "Mert 6 · 7 = 42.", "model-answer"),
    ]
    both = classroom.student_then_teacher(nb, "96_probe.ipynb")
    student = classroom.student_copy(nb, "96_probe.ipynb").cells
    assert [c.source for c in both.cells[: len(student)]] == [c.source for c in student]
    assert [c.source for c in both.cells[len(student) :]] == [c.source for c in nb.cells[2:]]
    ids = [c.id for c in both.cells]
    assert len(set(ids)) == len(ids)
    nbformat.validate(both)


def test_exercise_cells_before_the_exercise_section_are_refused():
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        _cell("code", "# 1. feladat – megoldás\nanswer = 42", "solution"),
        _cell("markdown", "## Feladatok"),
    ]
    with pytest.raises(classroom.ClassroomError, match="Feladatok"):
        classroom.exercises_start(nb, "95_probe.ipynb")
    with pytest.raises(classroom.ClassroomError, match="nincs"):
        classroom.exercises_start(nbformat.v4.new_notebook(), "94_probe.ipynb")


REAL = Path(__file__).resolve().parent.parent / "notebooks"


def test_html_edition_of_real_notebooks(tmp_path, capfd, real_photos, imagenet_weights):
    # Two quick notebooks of the series in the smoke profile (the suite's profile): every figure
    # the notebook shows is embedded in its page, and the index links the pages in order.
    chosen = [REAL / "02_backbone_inspection.ipynb", REAL / "04_head_replacement.ipynb"]
    out = tmp_path / "kiadas"
    argv = ["html", str(out), "--notebooks", *map(str, chosen)]
    assert classroom.main(argv) == 0
    printed, _ = capfd.readouterr()
    index = (out / "index.html").read_text(encoding="utf-8")
    positions = []
    for path in chosen:
        page = (out / f"{path.stem}.html").read_text(encoding="utf-8")
        nb = nbformat.read(path, as_version=4)
        shown = sum(
            c.source.count("plt.show()")
            for c in nb.cells
            if c.cell_type == "code" and "nbval-skip" not in c.metadata.get("tags", [])
        )
        assert shown > 0 and page.count("data:image/png;base64,") >= shown, path.name
        assert "Traceback (most recent call last)" not in page, path.name
        assert re.search(rf"^{path.name} … \d+ s \(HTML: ", printed, re.M), printed
        positions.append(index.index(f'href="{path.stem}.html"'))
    assert positions == sorted(positions)
