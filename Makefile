# Two commands (see README.md):
#   make course   run every notebook, write the report figures to figs/
#   make test     unit tests + every notebook under nbval, in quick mode
# Both create the virtual environment .venv on first use.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
PEERS  := $(VENV)/.peers-stamp

.PHONY: course test unit notebooks lab models bench clean peers

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

test: $(STAMP) $(PEERS)
	VISLIB_QUICK=1 $(PY) -m pytest tests notebooks --nbval-lax --nbval-current-env --nbval-cell-timeout=600 -p no:cacheprovider

unit: $(STAMP)
	$(PY) -m pytest tests -q

notebooks: $(STAMP)
	VISLIB_QUICK=1 $(PY) -m pytest notebooks --nbval-lax --nbval-current-env --nbval-cell-timeout=600 -p no:cacheprovider

lab: $(STAMP)
	$(VENV)/bin/jupyter lab notebooks

models: $(STAMP)
	$(PY) -m vislib.train vgg resnet

bench: $(PEERS)
	$(PY) benchmarks/bench_attribution.py
	$(PY) benchmarks/bench_perturbation.py
	$(PY) benchmarks/compare.py

clean:
	rm -rf build figs/*.png figs/*.pdf .pytest_cache
