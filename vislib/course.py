"""Run the whole course: execute every notebook in order, writing the report figures to ``figs/``.

    python -m vislib.course              # all notebooks, full experiments
    VISLIB_QUICK=1 python -m vislib.course 03 05   # some notebooks, quick mode

The committed notebooks are never modified: executed copies (with their outputs) are written to
``build/executed/``. The wall time of each notebook is printed at the end.
"""
from __future__ import annotations

import argparse
import contextlib
import sys
import time
from collections.abc import Iterator
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


def _repolling(get_msg, every: float = 1.0):
    """``get_msg(timeout)`` of an async kernel channel, re-polled every ``every`` seconds.

    nbclient waits for a cell's ``execute_reply`` with one poll of the shell socket for the whole
    cell timeout. After a cell that displays widgets that poll sometimes never wakes up although
    the reply has arrived (seen here about every other run of notebook 04: kernel idle, client
    waiting; jupyter/nbclient#312). A fresh poll sees the waiting message at once, so we poll in
    short steps until the caller's timeout is spent.
    """
    from queue import Empty

    async def patient_get_msg(timeout: float | None = None):
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = every if deadline is None else min(every, max(0.0, deadline - time.monotonic()))
            try:
                return await get_msg(timeout=left)
            except Empty:
                if deadline is not None and time.monotonic() >= deadline:
                    raise

    return patient_get_msg


@contextlib.contextmanager
def patient_kernel_clients() -> Iterator[None]:
    """Within the block, every nbclient client (nbclient, nbconvert, nbgrader) re-polls the shell and iopub channels.

    See :func:`_repolling`: without it a notebook with widgets can hang its executor. Used by
    :func:`run`, and by the tests that execute notebooks through nbclient or nbgrader.
    """
    from nbclient import NotebookClient

    original = NotebookClient.async_start_new_kernel_client

    async def start(self):
        kc = await original(self)
        self.kc.shell_channel.get_msg = _repolling(self.kc.shell_channel.get_msg)
        # the output messages too: a test run once idled ~600 s (a cell timeout) with the kernel idle
        # after notebook 04's widgets, and still passed; the shell re-poll alone had not prevented it
        self.kc.iopub_channel.get_msg = _repolling(self.kc.iopub_channel.get_msg)
        return kc

    NotebookClient.async_start_new_kernel_client = start
    try:
        yield
    finally:
        NotebookClient.async_start_new_kernel_client = original


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
            with patient_kernel_clients():
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
    from . import report

    sheet = report.write_contact_sheet()
    tex = report.write_numbers_tex()
    print(f"contact sheet: {sheet} ({len(report.figures())} figures); numbers for report/: {tex} "
          f"({len(report.numbers())} macros)")
    problems = report.audit_figures()
    for problem in problems:
        print(f"  figure standard: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
