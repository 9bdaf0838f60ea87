# Each target sets itself up: it creates .venv and installs the project when needed.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# Extras installed into the venv: dev by default. CI adds local (torch, transformers, trl, peft) so that
# tests/local (real TRL training on a tiny model) runs too: `make test EXTRAS=dev,local`. A CPU build of torch
# in the machine's wheel folder is installed first when there is one (a few hundred MB instead of the CUDA
# build's gigabytes); TORCH_WHEEL= (empty) takes torch from the index instead.
EXTRAS ?= dev
TORCH_WHEEL ?= $(firstword $(wildcard /opt/wheels/torch-*+cpu-*.whl))
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
	$(if $(and $(findstring local,$(EXTRAS)),$(TORCH_WHEEL)),$(PY) -m pip install -q '$(TORCH_WHEEL)')
	$(PY) -m pip install -q -e '.[$(EXTRAS)]'
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
