"""`nbgrader validate` passes on every committed (teacher's source) notebook: nbgrader executes the
notebook with the solutions in place and reports any check cell that raises.

This runs nbgrader's own Validator, the class behind the `nbgrader validate` command, in-process,
so that the kernel clients can be made to re-poll (vislib.course.patient_kernel_clients): the
widget cells of notebooks 04 and 06 can otherwise hang an nbclient-based executor.
"""
from __future__ import annotations

import os

import pytest
from nbgrader.validator import Validator
from traitlets.config import Config

from vislib.course import notebooks, patient_kernel_clients

pytestmark = pytest.mark.notebook_run


def validator() -> Validator:
    """nbgrader's validator with a cell timeout of 10 min (its default, 30 s, is too short for the
    course's experiment cells on a busy 2-core machine)."""
    return Validator(config=Config({"Execute": {"timeout": 600}}))


@pytest.mark.parametrize("path", notebooks(), ids=lambda p: p.stem)
def test_nbgrader_validate_passes_on_the_source_notebook(path, tmp_path, monkeypatch):
    monkeypatch.setenv("VISLIB_QUICK", os.environ.get("VISLIB_QUICK", "1"))
    monkeypatch.setenv("VISLIB_FIGS", str(tmp_path))       # validation writes no course figures
    with patient_kernel_clients():
        results = validator().validate(str(path))
    assert results == {}, {k: [c.get("raw_error", c["source"])[-2000:] for c in v] for k, v in results.items()}


def test_nbgrader_validate_reports_a_wrong_solution(tmp_path):
    """The same validation fails when a solution is wrong: the check cell raises, nbgrader sees it."""
    import nbformat

    from vislib.exercises.build import check_metadata, solution_metadata

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [
        nbformat.v4.new_code_cell("import torch\nfrom vislib.exercises import weights_activations as check"),
        nbformat.v4.new_code_cell("def inactive_fraction(acts):\n    ### BEGIN SOLUTION\n"
                                  "    return (acts == 0).float().mean(dim=(0, 2, 3))\n    ### END SOLUTION",
                                  metadata=solution_metadata("01-inactive-fraction")),
        nbformat.v4.new_code_cell("check.inactive_fraction(inactive_fraction)",
                                  metadata=check_metadata("01-inactive-fraction-check", 2)),
    ]
    path = tmp_path / "wrong.ipynb"
    nbformat.write(nb, path)
    results = validator().validate(str(path))
    assert [c["source"] for c in results["failed"]] == ["check.inactive_fraction(inactive_fraction)"]
    assert "ExerciseError" in results["failed"][0]["raw_error"]
