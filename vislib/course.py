"""Run the whole course: execute every notebook in order, writing the report figures to ``figs/``.

    python -m vislib.course              # all notebooks, full experiments
    VISLIB_QUICK=1 python -m vislib.course 03 05   # some notebooks, quick mode

The committed notebooks are never modified: executed copies (with their outputs) are written to
``build/executed/``. The wall time of each notebook is printed at the end.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from . import config

NOTEBOOKS = config.ROOT / "notebooks"
EXECUTED = config.ROOT / "build" / "executed"


def notebooks(selection: list[str] | None = None) -> list[Path]:
    """The course notebooks in order, optionally only those whose name starts with a selection."""
    found = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
    if selection:
        found = [p for p in found if any(p.name.startswith(s) for s in selection)]
    return found


def run(paths: list[Path], timeout: int = 1800) -> list[tuple[str, float]]:
    """Execute each notebook with nbclient (cwd = notebooks/) and save the executed copy."""
    import nbformat
    from nbclient import NotebookClient

    EXECUTED.mkdir(parents=True, exist_ok=True)
    times = []
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        start = time.perf_counter()
        print(f"running {path.name} ...", flush=True)
        client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                                resources={"metadata": {"path": str(NOTEBOOKS)}})
        try:
            client.execute()
        finally:
            nbformat.write(nb, EXECUTED / path.name)
        times.append((path.name, time.perf_counter() - start))
        print(f"  done in {times[-1][1]:.0f} s", flush=True)
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("only", nargs="*", help="notebook number prefixes, e.g. 03 05")
    args = parser.parse_args(argv)
    paths = notebooks(args.only)
    if not paths:
        print("no notebooks matched", file=sys.stderr)
        return 1
    times = run(paths)
    mode = "quick" if config.QUICK else "full"
    print(f"\nwall time per notebook ({mode} mode):")
    for name, seconds in times:
        print(f"  {name:40s} {seconds:6.0f} s")
    print(f"figures written to {config.FIGS_DIR}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
