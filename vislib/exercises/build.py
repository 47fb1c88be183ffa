"""Student and teacher builds of the course notebooks, with nbgrader's own preprocessors.

The committed notebooks are the **teacher's source**: exercises hold their solutions between
``### BEGIN SOLUTION`` and ``### END SOLUTION``, report questions hold model answers, and every
exercise and check cell carries nbgrader metadata. From them::

    python -m vislib.exercises.build student    # build/student/NN_*.ipynb: what a student works in
    python -m vislib.exercises.build teacher    # build/nbgrader/: an nbgrader course folder
    python -m vislib.exercises.build lint       # check the exercise format of the source notebooks

The student build runs nbgrader's ``ClearSolutions`` (solutions become ``raise
NotImplementedError()``, model answers become ``YOUR ANSWER HERE``), ``ClearHiddenTests``,
``ClearMarkScheme``, ``ClearOutput`` and ``LockCells``, then tags each check cell
``raises-exception`` so that *Run All* in JupyterLab goes on past an unsolved exercise. It never
overwrites a student notebook that was changed after it was built (a student's work): it says so
and leaves it, unless ``--force`` is given.
"""
from __future__ import annotations

import argparse
import copy
import hashlib
import json
import re
import shutil
import sys
from pathlib import Path

import nbformat

from .. import config
from .registry import EXERCISES

SOURCE = config.ROOT / "notebooks"
STUDENT = config.ROOT / "build" / "student"
TEACHER = config.ROOT / "build" / "nbgrader"
MANIFEST = ".built.json"

__all__ = ["answer_metadata", "build_student", "build_teacher", "check_metadata", "exercise_cells", "lint",
           "solution_metadata", "student_notebook"]


def _nbgrader(**fields) -> dict:
    return {"nbgrader": {"schema_version": 3, "task": False, **fields}}


def solution_metadata(grade_id: str) -> dict:
    """Metadata of an exercise cell: the student edits it; its solution region is cleared."""
    return _nbgrader(grade=False, solution=True, locked=False, grade_id=grade_id)


def check_metadata(grade_id: str, points: int) -> dict:
    """Metadata of an autograded check cell: locked, worth ``points``."""
    return _nbgrader(grade=True, solution=False, locked=True, points=points, grade_id=grade_id)


def answer_metadata(grade_id: str, points: int) -> dict:
    """Metadata of a written answer (markdown): manually graded; its model answer is cleared."""
    return _nbgrader(grade=True, solution=True, locked=False, points=points, grade_id=grade_id)


def _meta(cell) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {})


def exercise_cells(nb) -> list[tuple[int, dict]]:
    """``(index, nbgrader metadata)`` of every code solution cell of a notebook, in order."""
    return [(i, _meta(c)) for i, c in enumerate(nb.cells)
            if c.cell_type == "code" and _meta(c).get("solution")]


def lint(path: Path) -> list[str]:
    """Problems with the exercise format of one source notebook (empty when it is well formed).

    Checked: unique grade_ids; solution markers only in solution cells; every code solution cell
    is a registered exercise that defines its function and is followed by its check cell, which
    calls ``check.<function>(<function>)`` and carries the registered points; every registered
    exercise of this notebook is present; written answers are graded markdown cells with points.
    """
    nb = nbformat.read(path, as_version=4)
    stem = path.stem
    problems: list[str] = []
    seen: set[str] = set()
    for i, cell in enumerate(nb.cells):
        meta = _meta(cell)
        gid = meta.get("grade_id")
        if gid:
            if gid in seen:
                problems.append(f"{stem}: grade_id {gid!r} is used twice")
            seen.add(gid)
        if "BEGIN SOLUTION" in cell.source and not meta.get("solution"):
            problems.append(f"{stem} cell {i}: solution markers in a cell without solution metadata")
        if cell.cell_type == "markdown" and meta.get("solution") and not (meta.get("grade") and meta.get("points")):
            problems.append(f"{stem} cell {i}: a written answer must be graded and have points")
    for i, meta in exercise_cells(nb):
        gid = meta.get("grade_id", "")
        ex = EXERCISES.get(gid)
        if ex is None or ex.notebook != stem:
            problems.append(f"{stem} cell {i}: exercise {gid!r} has no check registered for this notebook")
            continue
        source = nb.cells[i].source
        if not re.search(rf"^def {ex.function}\(", source, re.M):
            problems.append(f"{stem} cell {i}: exercise {gid} must define `def {ex.function}(...)`")
        if "### BEGIN SOLUTION" not in source or "### END SOLUTION" not in source:
            problems.append(f"{stem} cell {i}: exercise {gid} has no ### BEGIN/END SOLUTION region")
        nxt = nb.cells[i + 1] if i + 1 < len(nb.cells) else None
        check = _meta(nxt) if nxt is not None else {}
        if nxt is None or nxt.cell_type != "code" or check.get("grade_id") != ex.check_id or not check.get("grade"):
            problems.append(f"{stem} cell {i}: exercise {gid} must be followed by its check cell {ex.check_id!r}")
            continue
        if f"check.{ex.function}({ex.function})" not in nxt.source:
            problems.append(f"{stem} cell {i + 1}: check cell must call check.{ex.function}({ex.function})")
        if check.get("points") != ex.points or not check.get("locked"):
            problems.append(f"{stem} cell {i + 1}: check cell must be locked and worth {ex.points} points")
    present = {m.get("grade_id") for _, m in exercise_cells(nb)}
    for ex in EXERCISES.values():
        if ex.notebook == stem and ex.grade_id not in present:
            problems.append(f"{stem}: registered exercise {ex.grade_id} is missing from the notebook")
    return problems


def student_notebook(nb):
    """The student version of a source notebook (a new object; ``nb`` is not changed)."""
    from nbgrader.preprocessors import ClearHiddenTests, ClearMarkScheme, ClearOutput, ClearSolutions, LockCells

    nb = copy.deepcopy(nb)
    resources: dict = {}
    for preprocessor in (ClearSolutions, ClearHiddenTests, ClearMarkScheme, ClearOutput, LockCells):
        nb, resources = preprocessor().preprocess(nb, resources)
    for cell in nb.cells:
        if cell.cell_type == "code" and _meta(cell).get("grade"):
            tags = cell.metadata.setdefault("tags", [])
            if "raises-exception" not in tags:
                tags.append("raises-exception")
    return nb


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def build_student(out: Path = STUDENT, selection: list[str] | None = None, *, force: bool = False) -> list[Path]:
    """Write the student version of each source notebook to ``out``; return the paths written.

    A student notebook that differs from what the last build wrote holds the student's work: it is
    kept (with a message) unless ``force``.
    """
    from ..course import notebooks

    out.mkdir(parents=True, exist_ok=True)
    record_path = out / MANIFEST
    record = json.loads(record_path.read_text()) if record_path.exists() else {}
    written = []
    for source in notebooks(selection):
        target = out / source.name
        if target.exists() and not force and record.get(source.name) != _digest(target):
            print(f"kept {target}: it changed since it was built (your work). "
                  "Move it away or use --force to rebuild it.")
            continue
        nb = student_notebook(nbformat.read(source, as_version=4))
        nbformat.write(nb, target)
        record[source.name] = _digest(target)
        written.append(target)
    record_path.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
    return written


NBGRADER_CONFIG = '''\
# nbgrader course folder written by `python -m vislib.exercises.build teacher`.
# Each course notebook is one assignment: source/<name>/<name>.ipynb.
#   nbgrader generate_assignment 03_saliency      -> release/03_saliency/ (student version)
#   nbgrader autograde 03_saliency                -> grades submitted/<student>/03_saliency/
c = get_config()  # noqa: F821
c.CourseDirectory.root = {root!r}
# A cell may run an experiment: nbgrader's default of 30 s per cell is too short on a laptop CPU.
c.Execute.timeout = 600
'''


def build_teacher(out: Path = TEACHER, selection: list[str] | None = None) -> list[Path]:
    """Write an nbgrader course folder: ``source/<name>/<name>.ipynb`` and ``nbgrader_config.py``."""
    from ..course import notebooks

    written = []
    for source in notebooks(selection):
        folder = out / "source" / source.stem
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, folder / source.name)
        written.append(folder / source.name)
    (out / "nbgrader_config.py").write_text(NBGRADER_CONFIG.format(root=str(out.resolve())))
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vislib.exercises.build", description=__doc__.split("\n")[0])
    parser.add_argument("what", choices=["student", "teacher", "lint"])
    parser.add_argument("notebooks", nargs="*", help="prefixes such as 03 05 (default: all)")
    parser.add_argument("--out", type=Path, help="output folder")
    parser.add_argument("--force", action="store_true", help="student: overwrite changed student notebooks")
    args = parser.parse_intermixed_args(argv)          # options and notebook prefixes in any order
    if args.what == "lint":
        from ..course import notebooks

        problems = [p for path in notebooks(args.notebooks or None) for p in lint(path)]
        print("\n".join(problems) if problems else f"{len(EXERCISES)} exercises, format OK")
        return 1 if problems else 0
    if args.what == "student":
        paths = build_student(args.out or STUDENT, args.notebooks or None, force=args.force)
    else:
        paths = build_teacher(args.out or TEACHER, args.notebooks or None)
    for p in paths:
        print(f"wrote {p}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
