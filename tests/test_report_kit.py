"""The report kit: report/report.tex, figs/numbers.tex and captions.tex, and `make report`.

That the run defines every macro and figure the template uses is checked after the notebooks ran
(notebooks/test_figures_of_the_run.py); here: the template compiles with numbers and captions as vislib
writes them (when a LaTeX engine is installed), and `make report` says what is missing when it is not.
"""
import os
import shutil
import subprocess
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
import pytest

from vislib import config, report

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "report" / "report.tex"


def test_the_template_follows_a_course_report_and_uses_numbers_and_figures():
    tex = (ROOT / "report" / "report.tex").read_text()
    sections = [line for line in tex.splitlines() if line.startswith("\\section{")]
    for part in ["Introduction", "Methods", "Evaluation", "Bias study", "Conclusion"]:
        assert any(part in s for s in sections), f"no section {part!r}"
    assert "\\input{../figs/numbers.tex}" in tex and "\\graphicspath{{../figs/}}" in tex
    macros, figures = report.template_uses(TEMPLATE)
    assert len(macros) >= 15 and len(figures) >= 10


def fake_run(folder: Path, macros: set[str], figures: set[str]) -> None:
    """A figures folder as a course run leaves it: numbers, captions with maths and specials, one-page PDFs."""
    for k, name in enumerate(sorted(macros)):
        report.number(name, 0.1 * k, 2, percent=k % 2 == 0, note="a test value")
    for name in sorted(figures):
        fig, ax = plt.subplots(figsize=(3.4, 1.5), layout="constrained")
        ax.plot([0, 1], [0, 1])
        ax.set(xlabel="x", ylabel="y")
        from vislib import plot
        plot.savefig(fig, name, folder=folder, close=True,
                     caption=rf"AFOC of $p_c(\tilde{{x}})$ for 5 % of {name}'s pixels & more_{{#1}}.")


def test_make_report_without_latex_says_what_to_install(tmp_path):
    shutil.copy(ROOT / "Makefile", tmp_path / "Makefile")
    shutil.copytree(ROOT / "report", tmp_path / "report")
    make = shutil.which("make")
    env = {**os.environ, "PATH": "/nonexistent"}
    out = subprocess.run([make, "-C", str(tmp_path), "report"], capture_output=True, text=True, env=env)
    assert out.returncode != 0 and "run 'make course' first" in out.stderr
    (tmp_path / "figs").mkdir()
    (tmp_path / "figs" / "numbers.tex").write_text("% empty\n")
    out = subprocess.run([make, "-C", str(tmp_path), "report"], capture_output=True, text=True, env=env)
    assert out.returncode != 0
    assert "needs a LaTeX engine" in out.stderr and "apt-get install latexmk texlive-latex-recommended" in out.stderr


@pytest.mark.skipif(shutil.which("latexmk") is None, reason="no LaTeX engine here (CI has none): compiled where there is")
def test_the_template_compiles_with_what_vislib_writes(tmp_path, monkeypatch):
    figs = tmp_path / "figs"
    monkeypatch.setattr(config, "FIGS_DIR", figs)
    macros, figures = report.template_uses(TEMPLATE)
    with matplotlib.rc_context({"font.size": 8}):
        fake_run(figs, macros, figures)
    shutil.copytree(ROOT / "report", tmp_path / "report")
    out = subprocess.run(["latexmk", "-pdf", "-interaction=nonstopmode", "-halt-on-error", "report.tex"],
                         cwd=tmp_path / "report", capture_output=True, text=True, timeout=300)
    log = (tmp_path / "report" / "report.log").read_text(errors="replace")
    assert out.returncode == 0, log[-3000:]
    assert (tmp_path / "report" / "report.pdf").stat().st_size > 10_000
    assert "Undefined control sequence" not in log and "no caption for" not in log
