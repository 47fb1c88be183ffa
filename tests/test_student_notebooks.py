"""The student notebooks, executed as built: every cell runs except the check cells of the
unsolved exercises, and each of those fails with its check's "not solved yet" message.

Each notebook is built with nbgrader's preprocessors (vislib.exercises.build) and executed with
nbclient in quick mode (the test command sets VISLIB_QUICK=1), in a temporary folder.
"""
from __future__ import annotations

import os

import nbformat
import pytest
from nbclient import NotebookClient

from vislib.course import notebooks, patient_kernel_clients
from vislib.exercises import EXERCISES
from vislib.exercises.build import student_notebook

pytestmark = pytest.mark.notebook_run


@pytest.mark.parametrize("path", notebooks(), ids=lambda p: p.stem)
def test_student_notebook_runs_past_every_unsolved_exercise(path, tmp_path, monkeypatch):
    monkeypatch.setenv("VISLIB_QUICK", os.environ.get("VISLIB_QUICK", "1"))
    monkeypatch.setenv("VISLIB_FIGS", str(tmp_path / "figs"))      # a student run writes no course figures
    nb = student_notebook(nbformat.read(path, as_version=4))
    with patient_kernel_clients():          # widget cells can otherwise hang nbclient (see vislib.course)
        NotebookClient(nb, timeout=600, kernel_name="python3", allow_errors=True,
                       resources={"metadata": {"path": str(tmp_path)}}).execute()
    expected = {ex.check_id for ex in EXERCISES.values() if ex.notebook == path.stem}
    failed = {}
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        errors = [o for o in cell.outputs if o.output_type == "error"]
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if errors:
            failed[grade_id or f"cell {i}"] = errors[0]
    unexpected = {k: f"{e.ename}: {e.evalue}" for k, e in failed.items() if k not in expected}
    assert not unexpected, f"cells that should have run failed: {unexpected}"
    assert set(failed) == expected, f"check cells that did not fail: {sorted(expected - set(failed))}"
    for grade_id, error in failed.items():
        assert error.ename == "ExerciseError" and "is not solved yet" in error.evalue, (grade_id, error.evalue)
