"""After the notebooks ran (pytest collects this file after them): their figures and numbers, as the report needs them.

``savefig`` already refuses a figure that breaks the standard while a notebook runs; this checks what the run left in
the figures folder: every PNG has its PDF and an index entry with a caption, size and fonts within the standard,
every notebook saved figures, and the report kit (``report/report.tex``) finds every number macro and figure it uses.
"""
from pathlib import Path

from vislib import config, course, report

TEMPLATE = Path(__file__).resolve().parents[1] / "report" / "report.tex"


def test_every_saved_figure_meets_the_standard_and_has_a_caption():
    assert report.figures(), f"no figures.json in {config.FIGS_DIR}: run the notebooks first"
    assert report.audit_figures() == []


def test_every_notebook_saved_figures():
    made = {r["notebook"] for r in report.figures().values()}
    missing = [p.stem for p in course.notebooks() if p.stem not in made]
    assert not missing, f"no figures from {missing}"


def test_the_report_template_finds_every_number_and_figure_of_the_run():
    macros, figures = report.template_uses(TEMPLATE)
    assert macros and figures, "the template uses no numbers or figures: wrong file?"
    numbers, index = report.numbers(), report.figures()
    assert sorted(macros - set(numbers)) == [], "macros the template uses but the run did not write"
    assert sorted(figures - set(index)) == [], "figures the template includes but the run did not save"
    assert all((config.FIGS_DIR / f"{f}.pdf").exists() for f in figures)
    tex = (config.FIGS_DIR / report.NUMBERS_TEX).read_text()
    assert all(f"\\newcommand{{\\{m}}}" in tex for m in macros)
