"""The exercises: every solution passes its check, every kept wrong answer is rejected with a
message that names the mistake, the notebooks and the table of checks agree, and the builds
strip what a student must not see."""
from __future__ import annotations

import importlib
import os
import pkgutil
import subprocess
import sys
from collections import Counter
from functools import cache
from pathlib import Path

import nbformat
import pytest

from vislib.course import notebooks
from vislib.exercises import EXERCISES, ExerciseError
from vislib.exercises.build import build_student, build_teacher, lint, student_notebook

import mistakes  # tests/mistakes: kept wrong answers, one module per notebook

ROOT = Path(__file__).resolve().parent.parent
#: What a solution cell may use without importing it: the names every notebook imports first.
PREAMBLE = "import math\nimport numpy as np\nimport torch\nimport torch.nn.functional as F\nfrom torch import nn\n"


@cache
def _notebook(stem: str):
    return nbformat.read(ROOT / "notebooks" / f"{stem}.ipynb", as_version=4)


def solution(grade_id: str):
    """The function the teacher's solution cell defines, run in a namespace of its own."""
    ex = EXERCISES[grade_id]
    cell = next(c for c in _notebook(ex.notebook).cells
                if c.get("metadata", {}).get("nbgrader", {}).get("grade_id") == grade_id)
    namespace: dict = {}
    exec(compile(PREAMBLE + cell.source, f"<{grade_id}>", "exec"), namespace)
    return namespace[ex.function]


def _mistakes() -> list:
    cases = []
    for info in pkgutil.iter_modules(mistakes.__path__):
        module = importlib.import_module(f"mistakes.{info.name}")
        for grade_id, wrong in module.MISTAKES.items():
            for fn, words in wrong:
                cases.append(pytest.param(grade_id, fn, words, id=f"{grade_id}:{fn.__name__}"))
    return cases


MISTAKES = _mistakes()


@pytest.mark.parametrize("grade_id", list(EXERCISES))
def test_solution_passes_its_check(grade_id, capsys):
    EXERCISES[grade_id].check(solution(grade_id))
    assert "✔ Correct" in capsys.readouterr().out


@pytest.mark.parametrize("grade_id, wrong, words", MISTAKES)
def test_wrong_answer_is_rejected_with_a_useful_message(grade_id, wrong, words):
    with pytest.raises(ExerciseError) as error:
        EXERCISES[grade_id].check(wrong)
    assert words in str(error.value), f"message does not say {words!r}:\n{error.value}"


def test_every_exercise_has_at_least_two_kept_wrong_answers():
    counts = Counter(p.values[0] for p in MISTAKES)
    assert not set(counts) - set(EXERCISES), "wrong answers for exercises that do not exist"
    few = {g: counts[g] for g in EXERCISES if counts[g] < 2}
    assert not few, f"exercises with fewer than two wrong answers in tests/mistakes: {few}"


@pytest.mark.parametrize("grade_id", list(EXERCISES))
def test_the_stub_says_not_solved_yet(grade_id):
    def stub(*args, **kwargs):
        # YOUR CODE HERE
        raise NotImplementedError()

    stub.__name__ = EXERCISES[grade_id].function
    with pytest.raises(ExerciseError, match="is not solved yet"):
        EXERCISES[grade_id].check(stub)


def test_every_notebook_is_well_formed_and_has_two_to_four_exercises():
    problems = [p for path in notebooks() for p in lint(path)]
    assert not problems, "\n".join(problems)
    per_notebook = Counter(ex.notebook for ex in EXERCISES.values())
    assert set(per_notebook) == {p.stem for p in notebooks()}
    assert all(2 <= n <= 4 for n in per_notebook.values()), per_notebook
    assert len(EXERCISES) >= 25


def test_every_notebook_has_graded_written_answers():
    for path in notebooks():
        nb = _notebook(path.stem)
        answers = [c for c in nb.cells if c.cell_type == "markdown"
                   and c.metadata.get("nbgrader", {}).get("solution")]
        assert answers, f"{path.stem} has no written-answer cells"
        for c in answers:
            assert "Model answer" in c.source, f"{path.stem}: an answer cell without a model answer"


def test_student_build_strips_solutions_and_model_answers(tmp_path):
    written = build_student(tmp_path)
    assert len(written) == len(notebooks())
    for path in written:
        nb = nbformat.read(path, as_version=4)
        text = "\n".join(c.source for c in nb.cells)
        assert "BEGIN SOLUTION" not in text and "Model answer" not in text
        stubs = [c for c in nb.cells if c.cell_type == "code" and c.metadata.get("nbgrader", {}).get("solution")]
        assert stubs and all("raise NotImplementedError()" in c.source for c in stubs)
        for c in nb.cells:
            if c.cell_type == "code":
                assert c.outputs == [] and c.execution_count is None
                if c.metadata.get("nbgrader", {}).get("grade"):
                    assert "raises-exception" in c.metadata.get("tags", [])
                    assert c.metadata.get("editable") is False and c.metadata.get("deletable") is False


def test_student_build_never_overwrites_a_students_work(tmp_path, capsys):
    first = build_student(tmp_path, ["01"])[0]
    nb = nbformat.read(first, as_version=4)
    nb.cells[0].source += "\n\nmy notes"
    nbformat.write(nb, first)
    assert build_student(tmp_path, ["01"]) == []
    assert "my notes" in first.read_text() and "changed since it was built" in capsys.readouterr().out
    assert build_student(tmp_path, ["01"], force=True) == [first]
    assert "my notes" not in first.read_text()
    assert build_student(tmp_path, ["01"]) == [first]        # unchanged since the build: rebuilt


def test_source_notebook_is_unchanged_by_the_student_build():
    nb = _notebook("01_weights_activations")
    before = nbformat.writes(nb)
    student_notebook(nb)
    assert nbformat.writes(nb) == before


def test_nbgrader_generates_the_assignment_from_the_teachers_source(tmp_path):
    build_teacher(tmp_path, ["01"])
    nbgrader = [sys.executable, "-m", "nbgrader"]
    # nbgrader runs the `alembic` command of its environment: the venv's bin/ on PATH, as when activated.
    env = {**os.environ, "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])}
    run = subprocess.run(nbgrader + ["generate_assignment", "01_weights_activations", "--force"],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    released = tmp_path / "release" / "01_weights_activations" / "01_weights_activations.ipynb"
    nb = nbformat.read(released, as_version=4)
    assert not any("BEGIN SOLUTION" in c.source for c in nb.cells)
    assert sum("raise NotImplementedError()" in c.source for c in nb.cells) == sum(
        ex.notebook == "01_weights_activations" for ex in EXERCISES.values())


def test_a_library_notimplementederror_is_not_taken_for_the_stub():
    import torch.nn.functional as F
    from vislib.exercises.feedback import attempt

    def upsample_3d(t):                    # torch: NotImplementedError with a message for 3-D bilinear input
        return F.interpolate(t, scale_factor=2, mode="bilinear")

    import torch
    with pytest.raises(ExerciseError) as error:
        attempt(upsample_3d, torch.zeros(2, 3, 3))
    assert "not solved yet" not in str(error.value) and "NotImplementedError" in str(error.value)


def test_build_command_takes_options_and_notebooks_in_any_order(tmp_path, capsys):
    from vislib.exercises.build import main

    assert main(["student", "--out", str(tmp_path), "03"]) == 0
    assert main(["student", "05", "--out", str(tmp_path)]) == 0
    assert sorted(p.name for p in tmp_path.glob("*.ipynb")) == ["03_saliency.ipynb", "05_cam.ipynb"]
    assert main(["lint", "03"]) == 0 and "format OK" in capsys.readouterr().out
