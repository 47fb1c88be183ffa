# Two commands (see README.md):
#   make course   run every notebook, write the report figures to figs/
#   make test     unit tests + every notebook under nbval, in quick mode
# Both create the virtual environment .venv on first use.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp

.PHONY: course test unit notebooks lab models bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

course: $(STAMP)
	$(PY) -m vislib.course

test: $(STAMP)
	VISLIB_QUICK=1 MPLBACKEND=Agg $(PY) -m pytest tests notebooks --nbval-lax --nbval-current-env -p no:cacheprovider

unit: $(STAMP)
	MPLBACKEND=Agg $(PY) -m pytest tests -q

notebooks: $(STAMP)
	VISLIB_QUICK=1 MPLBACKEND=Agg $(PY) -m pytest notebooks --nbval-lax --nbval-current-env -p no:cacheprovider

lab: $(STAMP)
	$(VENV)/bin/jupyter lab notebooks

models: $(STAMP)
	$(PY) -m vislib.train vgg resnet

bench: $(STAMP)
	$(PY) benchmarks/bench_attribution.py
	$(PY) benchmarks/bench_perturbation.py

clean:
	rm -rf build figs/*.png figs/*.pdf .pytest_cache
