# Two commands (see README.md):
#   make course   run every notebook, write the report figures to figs/
#   make test     unit tests, the exercises' checks and builds, every notebook under nbval and
#                 nbgrader validate, every student notebook as built, all in quick mode
# Both create the virtual environment .venv on first use.
# Exercises: make student (student copies in build/student/), make lab (work in them),
# make teacher (an nbgrader course folder in build/nbgrader/), make lab-teacher (the sources).

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
PEERS  := $(VENV)/.peers-stamp

.PHONY: course test unit notebooks lab lab-teacher student teacher models imagenet bench clean peers report

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# The peer libraries (captum, pytorch-grad-cam, torch-cam) for benchmarks/compare.py and
# tests/test_peers.py. grad-cam is pinned >= 1.5.7 in the extra: older releases depend on
# opencv-python, which would overwrite opencv-python-headless's cv2.
$(PEERS): $(STAMP)
	$(PY) -m pip install --quiet -e '.[peers]'
	touch $(PEERS)

peers: $(PEERS)

course: $(STAMP)
	$(PY) -m vislib.course

# The report kit: report/report.tex takes its figures from figs/ and its numbers from figs/numbers.tex,
# both written by the course run, and compiles to report/report.pdf when a LaTeX engine is installed.
report:
	@test -f figs/numbers.tex || { echo "figs/numbers.tex is missing: run 'make course' first (it writes the figures and numbers)" >&2; exit 1; }
	@if command -v latexmk >/dev/null 2>&1; then \
		cd report && latexmk -pdf -interaction=nonstopmode -halt-on-error report.tex; \
	elif command -v pdflatex >/dev/null 2>&1; then \
		cd report && pdflatex -interaction=nonstopmode -halt-on-error report.tex && pdflatex -interaction=nonstopmode -halt-on-error report.tex; \
	else \
		echo "make report needs a LaTeX engine and none was found (latexmk or pdflatex). Install TeX Live:" >&2; \
		echo "  Debian/Ubuntu: sudo apt-get install latexmk texlive-latex-recommended texlive-fonts-recommended" >&2; \
		echo "  macOS: MacTeX (https://tug.org/mactex); Windows: MiKTeX or TeX Live." >&2; \
		echo "Or upload report/ and figs/ to Overleaf and compile report/report.tex there." >&2; \
		exit 1; \
	fi

# The test command runs the notebooks' ImageNet sections too, on stand-in weights: random weights
# saved under torchvision's file names in a torch home of their own, loaded by torchvision's real
# code. The notebooks say they are stand-ins and save those figures as *_standin.
STANDIN_HOME := build/torch-standins
STANDINS     := $(STANDIN_HOME)/hub/checkpoints/.written
$(STANDINS): $(STAMP)
	$(PY) -m vislib.models standins $(STANDIN_HOME)/hub resnet18 vgg16 vgg16_bn
	touch $(STANDINS)

test: $(STAMP) $(PEERS) $(STANDINS)
	VISLIB_QUICK=1 TORCH_HOME=$(abspath $(STANDIN_HOME)) $(PY) -m pytest tests notebooks --nbval-lax --nbval-current-env --nbval-cell-timeout=600 -p no:cacheprovider --durations=25

# Unit tests alone (a few minutes): everything in tests/ except what executes whole notebooks,
# drives the browser or builds and installs the wheel; make test (= CI) runs those too.
unit: $(STAMP)
	$(PY) -m pytest tests -q -m "not notebook_run and not browser and not packaging"

notebooks: $(STAMP) $(STANDINS)
	VISLIB_QUICK=1 TORCH_HOME=$(abspath $(STANDIN_HOME)) $(PY) -m pytest notebooks --nbval-lax --nbval-current-env --nbval-cell-timeout=600 -p no:cacheprovider

# Student copies: solutions and model answers cleared by nbgrader's preprocessors. A copy the
# student has changed is never overwritten (python -m vislib.exercises.build student --force does).
student: $(STAMP)
	$(PY) -m vislib.exercises.build student

teacher: $(STAMP)
	$(PY) -m vislib.exercises.build teacher

lab: student
	$(VENV)/bin/jupyter lab build/student

lab-teacher: $(STAMP)
	$(VENV)/bin/jupyter lab notebooks

models: $(STAMP)
	$(PY) -m vislib.train vgg resnet

# Real ImageNet weights for the notebooks' ImageNet sections (needs internet; fails at once without).
imagenet: $(STAMP)
	$(PY) -m vislib.models download resnet18 vgg16 vgg16_bn

bench: $(PEERS)
	$(PY) benchmarks/bench_attribution.py
	$(PY) benchmarks/bench_perturbation.py
	$(PY) benchmarks/compare.py

clean:
	rm -rf build figs/*.png figs/*.pdf .pytest_cache
	cd report && rm -f report.pdf *.aux *.log *.out *.fls *.fdb_latexmk
