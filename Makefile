# Each target sets itself up: it creates .venv and installs the project when needed.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# Extras installed into the venv: dev by default. CI adds local (torch, transformers, trl, peft) so that
# tests/local (real TRL training on a tiny model) runs too: `make test EXTRAS=dev,local`. torch then comes
# from the CPU wheel index (a few hundred MB instead of the CUDA build's gigabytes).
EXTRAS ?= dev
TORCH_INDEX ?= https://download.pytorch.org/whl/cpu
comma := ,
STAMP := $(VENV)/.finetune-wb-installed-$(subst $(comma),-,$(EXTRAS))

# tiktoken downloads its encodings on first use; use the offline cache beside the checkout when there is one
# and the caller has not chosen a cache of their own.
SHARED_TIKTOKEN := $(abspath ../shared/tiktoken-cache)
ifeq ($(origin TIKTOKEN_CACHE_DIR),undefined)
ifneq ($(wildcard $(SHARED_TIKTOKEN)),)
export TIKTOKEN_CACHE_DIR := $(SHARED_TIKTOKEN)
endif
endif

.PHONY: demo test lint format docs bench clean

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[$(EXTRAS)]' $(if $(findstring local,$(EXTRAS)),--extra-index-url $(TORCH_INDEX))
	@touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/finetune-wb demo

test: $(STAMP)
	$(PY) -m pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check finetune_wb tests benchmarks examples
	$(VENV)/bin/ruff format --check finetune_wb tests benchmarks examples
	$(VENV)/bin/mypy finetune_wb
	$(VENV)/bin/lint-imports --no-cache

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

docs: $(STAMP)
	$(VENV)/bin/mkdocs build --strict

bench: $(STAMP)
	$(PY) benchmarks/bench_validate.py
	$(PY) benchmarks/bench_eval.py
	$(PY) benchmarks/bench_sync.py

clean:
	rm -rf $(VENV) site build *.egg-info
