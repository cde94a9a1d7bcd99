# revsnn developer commands. Every target can be rerun safely; `venv` reinstalls only when
# pyproject.toml or this Makefile has changed since the last successful install.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --quiet
STAMP := $(VENV)/.installed

# torch is pinned here, not in pyproject.toml: this exact release resolves to a CPU build,
# while a bare `torch` (or an open range) pulls a CUDA build of several GB.
TORCH_VERSION := 2.13.0
# SpikingJelly is the comparison baseline. Installed without its dependencies, because they would
# replace the CPU torch and add a torchvision that does not import next to it; the ones it needs
# on CPU (numpy, loguru) are installed in the step before.
SPIKINGJELLY_VERSION := 2.0.0
# Triton (the fused kernels) is pinned to the release whose CPU interpreter the tests were checked
# with; it installs next to the CPU torch and needs no GPU (TRITON_INTERPRET=1 in the tests).
TRITON_VERSION := 3.9.0

PORT ?= 8501
NOTEBOOK_PORT ?= 8888
NOTEBOOK_ARGS ?=
PYTEST_ARGS ?= -q

.PHONY: help venv chromium test screenshots dashboard notebooks bench clean distclean

help:
	@echo "make dashboard   set up .venv and serve the Streamlit dashboard at http://127.0.0.1:$(PORT)"
	@echo "make test        set up .venv (and Chromium when possible) and run the whole test suite"
	@echo "make notebooks   set up .venv and start JupyterLab in notebooks/"
	@echo "make bench       set up .venv and run the spiking-node benchmark"
	@echo "make screenshots retake the dashboard screenshots (browser test) and copy them to docs/"
	@echo "make venv        create .venv and install revsnn with all extras"
	@echo "make chromium    install Debian's chromium for browser tests and image export"
	@echo "make clean       remove caches, build outputs and test artifacts"
	@echo "make distclean   clean, and remove .venv"

venv: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install torch==$(TORCH_VERSION)
	$(PIP) install -e '.[all]' torch==$(TORCH_VERSION) triton==$(TRITON_VERSION) 'loguru>=0.7,<1'
	$(PIP) install --no-deps spikingjelly==$(SPIKINGJELLY_VERSION)
	$(PY) -c "import torch; assert torch.__version__.startswith('$(TORCH_VERSION)'), torch.__version__; print('torch', torch.__version__)"
	$(PY) -c "import triton; print('triton', triton.__version__)"
	touch $@

# Chromium drives the browser tests (Playwright) and static image export (kaleido). Its absence
# never fails the build: those tests skip and say why.
chromium:
	@if command -v chromium >/dev/null 2>&1; then \
		echo "chromium present: $$(chromium --version 2>/dev/null)"; \
	elif ! command -v apt-get >/dev/null 2>&1; then \
		echo "chromium not installed: apt-get is unavailable (browser tests will skip)"; \
	else \
		if [ "$$(id -u)" = 0 ]; then SUDO=; \
		elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then SUDO="sudo -n"; \
		else echo "chromium not installed: needs root or passwordless sudo (browser tests will skip)"; exit 0; fi; \
		echo "installing chromium with apt-get (about 30 s)"; \
		log=$$(mktemp); \
		if { $$SUDO apt-get update && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y chromium; } \
				>"$$log" 2>&1 && command -v chromium >/dev/null 2>&1; then \
			echo "chromium installed: $$(chromium --version 2>/dev/null)"; \
		else \
			tail -n 20 "$$log"; \
			echo "chromium not installed: apt-get failed, see above (browser tests will skip)"; \
		fi; \
		rm -f "$$log"; \
	fi

# REVSNN_SMALL=1 selects the small-run mode of the notebooks so the suite fits a CPU CI machine.
test: venv chromium
	REVSNN_SMALL=1 $(PY) -m pytest tests --doctest-modules revsnn $(PYTEST_ARGS)

# The browser test photographs every page into artifacts/screenshots/ (ignored); only this
# target copies them into docs/, so running the tests never changes the tree.
screenshots: venv chromium
	$(PY) -m pytest tests/test_dashboard_browser.py $(PYTEST_ARGS)
	cp artifacts/screenshots/dashboard-*.png docs/

dashboard: venv
	$(VENV)/bin/streamlit run dashboard/app.py \
		--server.headless true --server.address 127.0.0.1 --server.port $(PORT) \
		--browser.gatherUsageStats false

# Notebooks are committed as jupytext percent-format .py files; `jupytext --sync` creates or
# refreshes their paired .ipynb (pairing is set in pyproject.toml), which JupyterLab then opens.
# The server root stays at the repository root so Jupytext finds that pairing when saving.
notebooks: venv
	@set -- notebooks/*.py; if [ -e "$$1" ]; then $(VENV)/bin/jupytext --sync "$$@"; fi
	$(VENV)/bin/jupyter lab --ServerApp.root_dir=. --LabApp.default_url=/lab/tree/notebooks \
		--ServerApp.ip=127.0.0.1 --ServerApp.port=$(NOTEBOOK_PORT) \
		$$([ "$$(id -u)" = 0 ] && echo --allow-root) $(NOTEBOOK_ARGS)

bench: venv
	$(PY) -m revsnn bench nodes

clean:
	rm -rf build dist artifacts .pytest_cache .hypothesis *.egg-info
	find . \( -path ./$(VENV) -o -path ./.git \) -prune -o \
		-type d \( -name __pycache__ -o -name .ipynb_checkpoints \) -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV)
