"""A normal install: the wheel ships the course checkpoints, and an installed vislib works from any folder.

The slow test builds the wheel of this checkout exactly as ``pip install .`` does (``pip wheel``),
installs it into a fresh virtual environment (``pip install --no-deps --no-index``, no network),
and then, from a folder outside the checkout, loads a course model, runs Grad-CAM and saves a
figure. The fresh environment finds torch and the other dependencies through one ``.pth`` line
that names this environment's site-packages: installing torch anew would copy about 5.5 GB and
take minutes (its wheels lie on this disk, but a CUDA build), and what is under test is vislib's
own packaging, not pip's resolver. vislib itself is imported from the fresh environment only,
which the test checks.

Marked ``packaging``: ``make unit`` skips it, ``make test`` (= CI) runs it.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest
import torch

from vislib import attribution, config, models

ROOT = Path(__file__).resolve().parent.parent


def _clean_env() -> dict[str, str]:
    """The environment of a user who set none of vislib's variables."""
    env = {k: v for k, v in os.environ.items()
           if k not in {"VISLIB_FIGS", "VISLIB_DATA", "PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV"}}
    env["OMP_NUM_THREADS"] = "1"
    return env


def _run(args: list[str], cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    result = subprocess.run(args, cwd=cwd, env=_clean_env(), capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"{' '.join(map(str, args))} failed:\n{result.stdout}\n{result.stderr}"
    return result


# --------------------------------------------------------------------------- where things go (fast)


def test_from_the_checkout_figures_and_checkpoints_live_in_the_checkout():
    for cwd in (ROOT / "notebooks", ROOT, Path("/tmp")):      # a notebook runs in notebooks/
        assert config.locations(ROOT, ROOT / "vislib", {}, cwd) == (True, ROOT / "data", ROOT / "figs")
    # and this session's vislib is the checkout's
    assert config.FROM_CHECKOUT and models.MODELS_DIR == ROOT / "data" / "models"
    assert "make models" in config.REBUILD_COMMAND


def test_installed_figures_go_to_the_working_folder_and_checkpoints_come_from_the_package(tmp_path):
    site = tmp_path / "site-packages"
    (site / "vislib").mkdir(parents=True)
    work = tmp_path / "work"
    assert config.locations(site, site / "vislib", {}, work) == (False, site / "vislib" / "course_data",
                                                                  work / "figs")


def test_environment_variables_override_both_folders(tmp_path):
    env = {"VISLIB_FIGS": str(tmp_path / "f"), "VISLIB_DATA": str(tmp_path / "d")}
    for root in (ROOT, tmp_path):
        _, data_dir, figs_dir = config.locations(root, root / "vislib", env, Path("/"))
        assert (data_dir, figs_dir) == (tmp_path / "d", tmp_path / "f")
    # an empty variable counts as unset
    assert config.locations(ROOT, ROOT / "vislib", {"VISLIB_FIGS": ""}, Path("/"))[2] == ROOT / "figs"


def test_a_notebook_run_from_notebooks_writes_to_the_checkouts_figs():
    code = "import json; from vislib import config; print(json.dumps([str(config.FIGS_DIR), config.FROM_CHECKOUT]))"
    out = _run([sys.executable, "-c", code], cwd=ROOT / "notebooks").stdout
    assert json.loads(out.strip().splitlines()[-1]) == [str(ROOT / "figs"), True]


# --------------------------------------------------------------------------- a real install (slow)
def _source_copy(dest: Path) -> Path:
    """What ``pip install .`` needs of the checkout, copied so that the build writes nothing into it."""
    src = dest / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".ipynb_checkpoints")
    shutil.copytree(ROOT / "vislib", src / "vislib", ignore=ignore)
    shutil.copytree(ROOT / "data" / "models", src / "data" / "models", ignore=ignore)
    return src


INSTALLED_SCRIPT = r"""
import json, sys
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
import torch
import vislib
from vislib import attribution, config, models, plot

model = models.load_course_model("resnet")
x = torch.load("images.pt")
maps = attribution.gradcam(model, x)
fig, ax = plt.subplots(figsize=(3, 3))
plot.overlay(ax, x[0], maps[0], colorbar=True, label="Grad-CAM", title="Grad-CAM of the installed vislib")
paths = plot.savefig(fig, "installed_gradcam", close=True, caption="Grad-CAM of the course ResNet, installed vislib.")
torch.save({"maps": maps, "logits": model(x).detach()}, "result.pt")
print(json.dumps({"vislib": vislib.__file__, "from_checkout": config.FROM_CHECKOUT,
                  "models_dir": str(models.MODELS_DIR), "figs": [str(p) for p in paths],
                  "torch": torch.__file__}))
"""


@pytest.mark.packaging
def test_pip_install_of_the_wheel_runs_a_method_from_another_folder(tmp_path):
    # 1. Build the wheel as `pip install .` does, offline.
    src = _source_copy(tmp_path)
    dist = tmp_path / "dist"
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-index", "--no-build-isolation",
          "--quiet", "-w", str(dist), str(src)], cwd=tmp_path)
    wheel = next(dist.glob("vislib-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    # Every module of the package is in it (a subpackage missing from pyproject's list would not be),
    # and so are the course checkpoints with their manifest, and no figure.
    modules = {p.relative_to(ROOT).as_posix() for p in (ROOT / "vislib").rglob("*.py") if "__pycache__" not in p.parts}
    assert modules - names == set()
    shipped = {f"vislib/course_data/models/{f}" for f in ("manifest.json", "resnet.pt", "vgg.pt")}
    assert shipped <= names
    assert not any(n.endswith((".png", ".pdf")) or "/figs/" in n for n in names)

    # 2. A fresh environment with vislib installed from the wheel, not editable, without the network.
    venv = tmp_path / "fresh"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], cwd=tmp_path)
    python = venv / "bin" / "python"
    _run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index", "--quiet",
          str(wheel)], cwd=tmp_path)
    site = Path(_run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                     cwd=tmp_path).stdout.strip())
    deps = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (site / "_vislib_test_dependencies.pth").write_text("\n".join(sorted(deps)) + "\n")

    # 3. From a folder that is not the checkout: load a course model, run Grad-CAM, save a figure.
    work = tmp_path / "elsewhere"
    work.mkdir()
    x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    torch.save(x, work / "images.pt")
    out = _run([str(python), "-I", "-c", INSTALLED_SCRIPT], cwd=work).stdout
    report = json.loads(out.strip().splitlines()[-1])

    # vislib came from the fresh environment's site-packages, as an installed package ...
    assert Path(report["vislib"]).resolve() == (site / "vislib" / "__init__.py").resolve()
    assert report["from_checkout"] is False
    assert not Path(report["torch"]).resolve().is_relative_to(venv.resolve())       # torch through the .pth
    # ... its checkpoints are the shipped package data, byte for byte the committed ones ...
    assert Path(report["models_dir"]).resolve() == (site / "vislib" / "course_data" / "models").resolve()
    for name in ("resnet", "vgg"):
        file = models.manifest()[name]["file"]
        assert (site / "vislib/course_data/models" / file).read_bytes() == (models.MODELS_DIR / file).read_bytes()
    # ... the figures went to ./figs of the working folder, and nothing was written into the environment ...
    assert [Path(p) for p in report["figs"]] == [work / "figs" / "installed_gradcam.png",
                                                  work / "figs" / "installed_gradcam.pdf"]
    assert all(Path(p).stat().st_size > 1000 for p in report["figs"])
    assert not [p for p in venv.rglob("*") if p.suffix in {".png", ".pdf"} or p.name == "figs"]
    # ... and the installed model gives the checkout's logits and Grad-CAM maps.
    result = torch.load(work / "result.pt")
    model = models.load_course_model("resnet")
    with torch.no_grad():
        assert torch.allclose(result["logits"], model(x), atol=1e-5)
    assert torch.allclose(result["maps"], attribution.gradcam(model, x), atol=1e-5)
