"""What a course run leaves for a report: the figure index, the contact sheet and the numbers.

Three files in the figures folder (:data:`vislib.config.FIGS_DIR`), rewritten as the notebooks run:

- ``figures.json``: every figure :func:`vislib.plot.savefig` wrote, with its caption, size,
  smallest font, the notebook that made it and the mode (quick or full);
- ``README.md``: the **contact sheet**, every figure as a thumbnail with its caption, notebook and
  mode, grouped by notebook (GitHub shows it when one opens ``figs/``);
- ``numbers.json`` and ``numbers.tex``: the run's key results. A notebook calls
  :func:`number` (or :func:`interval`, :func:`mean_sd`, :func:`text`) with a macro name, and
  ``numbers.tex`` gets ``\\newcommand{\\vggTestAccuracy}{97.3\\,\\%}``; the report skeleton in
  ``report/`` inputs that file, so re-running the course updates the report's numbers.

Macro names are camelCase letters with at least one capital (``vggTestAccuracy``): LaTeX's own
commands are lower case or start with a capital (``\\date``, ``\\Huge``), so a name of this form
never redefines one.
"""
from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Sequence
from pathlib import Path

from . import config

FIGURES_INDEX = "figures.json"
CONTACT_SHEET = "README.md"
NUMBERS_JSON = "numbers.json"
NUMBERS_TEX = "numbers.tex"
_MACRO = re.compile(r"^[a-z]+[A-Z][A-Za-z]*$")


def _mode() -> str:
    return "quick" if config.QUICK else "full"


def _read(path: Path) -> dict:
    if not path.exists():
        return {}
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError:            # a file cut off by an interrupted run: start it again
        return {}


def _write(path: Path, text: str) -> None:
    """Write through a temporary file and rename, so a reader never sees half a file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def notebook_of(stem: str) -> str:
    """The course notebook a figure or number belongs to, from its ``NN_`` prefix ("" if none)."""
    m = re.match(r"^(\d\d)_", stem)
    if not m:
        return ""
    found = sorted((config.ROOT / "notebooks").glob(f"{m.group(1)}_*.ipynb"))
    return found[0].stem if found else f"{m.group(1)}"


# ------------------------------------------------------------------------------------ figures
def register_figure(folder: Path, stem: str, *, caption: str, width_in: float, height_in: float,
                    min_font_pt: float, checked: bool) -> None:
    """Record one saved figure in ``folder/figures.json`` and rewrite the contact sheet."""
    folder = Path(folder)
    index = _read(folder / FIGURES_INDEX)
    index[stem] = {"caption": caption, "notebook": notebook_of(stem), "mode": _mode(),
                   "width_in": round(width_in, 2), "height_in": round(height_in, 2),
                   "min_font_pt": None if math.isinf(min_font_pt) else round(min_font_pt, 2), "checked": checked}
    index = {k: index[k] for k in sorted(index) if (folder / f"{k}.png").exists() or k == stem}
    _write(folder / FIGURES_INDEX, json.dumps(index, indent=1, ensure_ascii=False) + "\n")
    write_contact_sheet(folder, index)
    write_captions_tex(folder, index)


def figures(folder: str | Path | None = None) -> dict[str, dict]:
    """The figure index of ``folder`` (default: the figures folder), ``{stem: record}``."""
    return _read(Path(folder or config.FIGS_DIR) / FIGURES_INDEX)


def audit_figures(folder: str | Path | None = None) -> list[str]:
    """Every way the figures in ``folder`` fall short of the standard, one line each (empty: none).

    Checks, from the files and ``figures.json``: every PNG has its PDF and the other way round,
    every PNG is in the index, and each index entry was checked by :func:`vislib.plot.savefig`,
    has a caption, is at most 7 in x 9 in with no text below 7 pt.
    """
    from .style import FULL_WIDTH, MAX_HEIGHT, MIN_FONT_PT, SIZE_SLACK_IN

    folder = Path(folder or config.FIGS_DIR)
    index = figures(folder)
    pngs = {p.stem for p in folder.glob("*.png")}
    pdfs = {p.stem for p in folder.glob("*.pdf")}
    problems = [f"{s}.png has no {s}.pdf" for s in sorted(pngs - pdfs)]
    problems += [f"{s}.pdf has no {s}.png" for s in sorted(pdfs - pngs)]
    problems += [f"{s}.png is not in {FIGURES_INDEX} (saved without vislib.plot.savefig?)"
                 for s in sorted(pngs - set(index))]
    for stem, r in sorted(index.items()):
        if not r.get("checked"):
            problems.append(f"{stem}: saved with check=False")
        if not r.get("caption"):
            problems.append(f"{stem}: no caption")
        if r["width_in"] > FULL_WIDTH + SIZE_SLACK_IN or r["height_in"] > MAX_HEIGHT + SIZE_SLACK_IN:
            problems.append(f"{stem}: {r['width_in']} x {r['height_in']} in, "
                            f"larger than {FULL_WIDTH} x {MAX_HEIGHT} in")
        if r.get("min_font_pt") is not None and r["min_font_pt"] < MIN_FONT_PT - 1e-6:
            problems.append(f"{stem}: text of {r['min_font_pt']} pt, below {MIN_FONT_PT:g} pt")
    return problems


def write_contact_sheet(folder: str | Path | None = None, index: dict | None = None) -> Path:
    """Write ``folder/README.md``: every indexed figure as a thumbnail with caption, notebook and mode."""
    folder = Path(folder or config.FIGS_DIR)
    index = figures(folder) if index is None else index
    modes = sorted({r["mode"] for r in index.values()})
    lines = ["# Figures", "",
             "Every figure the course writes, as a thumbnail with its caption, the notebook that made it and the "
             "mode it ran in (*full*: the experiments of the course; *quick*: the test run's small versions). "
             "Each is a PNG (slides) and a PDF (reports) of the same name, at most 7 in wide with no text below "
             "7 pt, so it goes into a report as it is. Written by `vislib.plot.savefig` (do not edit); the key "
             f"numbers of the run are in [`{NUMBERS_TEX}`]({NUMBERS_TEX}) for `report/`.", "",
             f"{len(index)} figures; modes: {', '.join(modes) or 'none yet'}.", ""]
    by_notebook: dict[str, list[str]] = {}
    for stem in sorted(index):
        by_notebook.setdefault(index[stem]["notebook"] or "other", []).append(stem)
    for notebook, stems in by_notebook.items():
        source = f"[`{notebook}`](../notebooks/{notebook}.ipynb)" if notebook != "other" else "other figures"
        lines += [f"## {source}", "", "| figure | caption |", "|---|---|"]
        for stem in stems:
            r = index[stem]
            caption = (r["caption"] or "*(no caption: saved with check=False)*").replace("|", "\\|")
            lines.append(f'| <img src="{stem}.png" width="260" alt="{stem}"> | **{stem}** '
                         f"([PNG]({stem}.png), [PDF]({stem}.pdf); {r['width_in']:.1f} x {r['height_in']:.1f} in, "
                         f"{r['mode']})<br>{caption} |")
        lines.append("")
    path = folder / CONTACT_SHEET
    folder.mkdir(parents=True, exist_ok=True)
    _write(path, "\n".join(lines))
    return path


def template_uses(tex: str | Path) -> tuple[set[str], set[str]]:
    """The number macros (camelCase, as :func:`number` names them) and the figures a LaTeX file uses.

    Figures are the names given to ``\\includegraphics``, ``\\course`` (report/report.tex's figure
    macro) and ``\\figcaption``; comments are left out, and so are macro arguments (``#2``).
    """
    body = re.sub(r"(?<!\\)%.*", "", Path(tex).read_text())
    macros = set(re.findall(r"\\([a-z]+[A-Z][A-Za-z]*)", body)) - {"figcaption"}
    used = set(re.findall(r"\\(?:includegraphics|course)(?:\[[^\]]*\])?\{([^}]+)\}", body))
    used |= set(re.findall(r"\\figcaption\{([^}]+)\}", body))
    return macros, {f for f in used if "#" not in f}


# ------------------------------------------------------------------------------------ numbers
_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                  "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\^{}",
                  "|": r"\textbar{}", "<": r"\textless{}", ">": r"\textgreater{}",
                  "±": r"$\pm$", "−": r"\textminus{}",
                  # what captions write in Unicode, for a LaTeX without Unicode fonts (pdflatex)
                  "×": r"$\times$", "→": r"$\to$", "←": r"$\leftarrow$", "≤": r"$\le$", "≥": r"$\ge$",
                  "≈": r"$\approx$", "·": r"$\cdot$", "–": "--", "—": "---", "…": r"\ldots{}",
                  "✓": r"$\checkmark$",
                  "✗": r"$\times$", "↑": r"$\uparrow$", "↓": r"$\downarrow$", "°": r"$^\circ$", "²": r"$^2$",
                  "‖": r"$\|$", "∑": r"$\sum$", "∂": r"$\partial$", "∞": r"$\infty$", "√": r"$\surd$",
                  **{g: f"${{\\{n}}}$" for g, n in zip("αβγδεζηθικλμνξπρστυφχψω",
                     ("alpha beta gamma delta varepsilon zeta eta theta iota kappa lambda mu nu xi pi rho "
                      "sigma tau upsilon phi chi psi omega").split())},
                  **{g: f"${{\\{n}}}$" for g, n in zip("ΓΔΘΛΞΠΣΦΨΩ",
                                                         "Gamma Delta Theta Lambda Xi Pi Sigma Phi Psi Omega".split())}}


def _escape(text: str) -> str:
    r"""Plain text for LaTeX: special characters escaped, ``97.3 %`` as ``97.3\,\%``."""
    return "".join(_LATEX_SPECIAL.get(c, c) for c in text).replace(" \\%", "\\,\\%")


def _escape_number(text: str) -> str:
    r"""A reported number for LaTeX: :func:`_escape`, and a minus sign (``\textminus``), not a hyphen, before digits."""
    return re.sub(r"(?<![\w.])-(?=\d)", r"\\textminus{}", _escape(text))


def format_number(value: float, digits: int = 2, *, percent: bool = False) -> str:
    """``value`` with ``digits`` decimals (as a percentage with ``percent=True``: 0.973 -> ``97.3 %``)."""
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"a reported number must be finite, got {value}")
    shown = f"{100 * value if percent else value:.{digits}f}"
    if shown.startswith("-") and not shown.strip("-0."):        # -0.001 at 2 digits is 0.00, not -0.00
        shown = shown[1:]
    return f"{shown} %" if percent else shown


def format_scientific(value: float, digits: int = 1, *, maths: bool = False) -> str:
    """``value`` as a mantissa with ``digits`` decimals and a power of ten: ``1.83e-7`` -> ``"1.8e-7"``,
    or with ``maths=True`` ``"$1.8\\times10^{-7}$"`` (LaTeX, and matplotlib's mathtext for figures)."""
    format_number(value, digits)                                   # the finiteness check
    mantissa, exponent = f"{float(value):.{digits}e}".split("e")
    return rf"${mantissa}\times10^{{{int(exponent)}}}$" if maths else f"{mantissa}e{int(exponent)}"


def macro_name(*parts: str) -> str:
    """A macro name from words and method names: ``macro_name("eval", "kl", "gradcam_pp")`` -> ``"evalKlGradcamPp"``.

    Underscores, spaces, hyphens and ``+`` split words; digits are spelled out (``"k10"`` -> ``"kOneZero"``)
    because LaTeX macro names are letters only.
    """
    digits = dict(zip("0123456789", ("Zero", "One", "Two", "Three", "Four", "Five", "Six", "Seven", "Eight", "Nine")))
    words = [w for p in parts for w in re.split(r"[_\s\-+|]+", str(p)) if w]
    words = ["".join(digits.get(c, c) for c in w) for w in words]
    name = words[0][:1].lower() + words[0][1:] + "".join(w[:1].upper() + w[1:] for w in words[1:])
    if not _MACRO.match(name):
        raise ValueError(f"{parts!r} give {name!r}, which is not a macro name (camelCase letters with a capital)")
    return name


def _escape_caption(caption: str) -> str:
    """A caption for LaTeX: text escaped (a minus sign before digits), ``$...$`` maths (matplotlib's mathtext is
    LaTeX) kept as written."""
    parts = caption.split("$")
    if len(parts) % 2 == 0:                      # an odd number of $: no maths, all text
        return _escape_number(caption)
    return "".join(_escape_number(p) if k % 2 == 0 else f"${_math_unicode(p)}$" for k, p in enumerate(parts))


def _math_unicode(maths: str) -> str:
    """Unicode symbols inside ``$...$`` as LaTeX commands (the text mapping without its ``$``; in maths
    the Unicode minus is ``-``, which LaTeX sets as a minus there)."""
    return "".join("-" if c == "−" else _LATEX_SPECIAL[c].strip("$") + " " if ord(c) > 127 and c in _LATEX_SPECIAL
                   else c for c in maths)


def write_captions_tex(folder: str | Path | None = None, index: dict | None = None) -> Path:
    """Write ``folder/captions.tex``: ``\\figcaption{<stem>}`` gives the caption savefig recorded."""
    folder = Path(folder or config.FIGS_DIR)
    index = figures(folder) if index is None else index
    lines = ["% The figures' captions as savefig recorded them, written by vislib.report (do not edit).",
             "% \\figcaption{03_saliency_methods} prints one; an unknown name prints it in bold.",
             r"\providecommand{\figcaption}[1]{\ifcsname vislibcaption@#1\endcsname"
             r"\csname vislibcaption@#1\endcsname\else\textbf{no caption for \detokenize{#1}}\fi}", ""]
    for stem, r in index.items():
        lines.append(rf"\expandafter\def\csname vislibcaption@{stem}\endcsname{{{_escape_caption(r['caption'])}}}")
    path = folder / "captions.tex"
    _write(path, "\n".join(lines) + "\n")
    return path


def _record(name: str, shown: str, value: float | None, note: str, tex: str | None = None) -> str:
    if not isinstance(name, str) or not _MACRO.match(name):
        raise ValueError(f"number names are LaTeX macro names in camelCase letters with a capital, such as "
                         f"'vggTestAccuracy'; got {name!r}")
    folder = config.FIGS_DIR
    folder.mkdir(parents=True, exist_ok=True)
    numbers = _read(folder / NUMBERS_JSON)
    numbers[name] = {"text": shown, "value": value, "note": note, "mode": _mode()}
    if tex is not None:
        numbers[name]["tex"] = tex
    numbers = dict(sorted(numbers.items()))
    _write(folder / NUMBERS_JSON, json.dumps(numbers, indent=1, ensure_ascii=False) + "\n")
    write_numbers_tex(folder, numbers)
    return shown


def number(name: str, value: float, digits: int = 2, *, percent: bool = False, scientific: bool = False,
           note: str = "") -> str:
    """Report ``value`` as the macro ``\\<name>`` of ``numbers.tex``; return it as printed.

    ``note`` says what it is (it becomes a comment beside the macro). ``percent=True`` writes a
    share as a percentage (0.973 -> ``97.3 %``); ``scientific=True`` a mantissa with ``digits``
    decimals and a power of ten: printed ``1.8e-7``, typeset ``$1.8\\times10^{-7}$``.
    """
    if scientific:
        return _record(name, format_scientific(value, digits), float(value), note,
                       tex=format_scientific(value, digits, maths=True))
    return _record(name, format_number(value, digits, percent=percent), float(value), note)


def interval(name: str, mean: float, low: float, high: float, digits: int = 2, *, percent: bool = False,
             note: str = "") -> str:
    """Report a mean with its confidence interval: ``0.42 [0.40, 0.44]``."""
    f = lambda v: format_number(v, digits, percent=percent)   # noqa: E731
    return _record(name, f"{f(mean)} [{f(low)}, {f(high)}]", float(mean), note)


def mean_sd(name: str, values: Sequence[float], digits: int = 2, *, percent: bool = False, note: str = "") -> str:
    """Report the mean and sample standard deviation of ``values`` (seeds, say): ``15.0 ± 0.7``."""
    v = [float(x) for x in values]
    if len(v) < 2:
        raise ValueError(f"mean_sd needs at least two values, got {len(v)}")
    mean = sum(v) / len(v)
    sd = math.sqrt(sum((x - mean) ** 2 for x in v) / (len(v) - 1))
    scale = 100 if percent else 1
    shown = f"{format_number(scale * mean, digits)} ± {format_number(scale * sd, digits)}" + (" %" if percent else "")
    return _record(name, shown, mean, note)


def text(name: str, value: str, *, note: str = "") -> str:
    """Report a word or phrase (the best method, say) as ``\\<name>``."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"text needs a non-empty string, got {value!r}")
    return _record(name, value, None, note)


def numbers(folder: str | Path | None = None) -> dict[str, dict]:
    """The reported numbers of ``folder`` (default: the figures folder), ``{name: record}``."""
    return _read(Path(folder or config.FIGS_DIR) / NUMBERS_JSON)


def write_numbers_tex(folder: str | Path | None = None, records: dict | None = None) -> Path:
    """Write ``folder/numbers.tex``: one ``\\newcommand`` per reported number."""
    folder = Path(folder or config.FIGS_DIR)
    records = numbers(folder) if records is None else records
    modes = sorted({r["mode"] for r in records.values()})
    lines = ["% The key numbers of the last course run, written by vislib.report (do not edit).",
             f"% Modes of the runs that wrote them: {', '.join(modes) or 'none'}.", ""]
    for name, r in records.items():
        comment = f"  % {r['note']}" if r.get("note") else ""
        shown = r.get("tex") or (_escape(r["text"]) if r.get("value") is None else _escape_number(r["text"]))
        lines.append(f"\\newcommand{{\\{name}}}{{{shown}}}{comment}")
    path = folder / NUMBERS_TEX
    _write(path, "\n".join(lines) + "\n")
    return path


__all__ = ["audit_figures", "template_uses", "macro_name", "number", "interval", "mean_sd", "text", "numbers",
           "figures",
           "format_number", "format_scientific", "register_figure",
           "write_contact_sheet", "write_captions_tex", "write_numbers_tex", "notebook_of"]
