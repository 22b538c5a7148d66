# One task runner for the README, CI and developers.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup test test-fast demo lint golden bench clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev,serve,ray]'
	touch $(STAMP)

setup: $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider -m "not server"

demo: $(STAMP)
	$(BIN)/python scripts/demo.py

golden: $(STAMP)
	$(BIN)/python -m tests.golden.regenerate

# ruff over the Python sources, then the pinned Pyright (node and pyright from the wheels:
# no download, works offline) over the package.
lint: $(STAMP)
	$(BIN)/ruff check lanser tests benchmarks scripts
	$(BIN)/python -m lanser.pyright_cli --pythonpath $(BIN)/python lanser

# Every benchmark once, quickly, on its default (small, local) inputs: fewer repetitions
# than a measurement wants (BENCHMARKS.md has the full runs).  bench_reward_large.py
# downloads real repositories and is left to `python benchmarks/bench_reward_large.py`.
bench: $(STAMP)
	$(BIN)/python benchmarks/bench_locate.py --repeat 3 --cli-repeat 2
	$(BIN)/python benchmarks/bench_navigation.py --rounds 1 --runs 1
	$(BIN)/python benchmarks/bench_diag_term.py --jobs 2
	$(BIN)/python benchmarks/bench_reward.py --no-cli
	$(BIN)/python benchmarks/bench_batch.py --n 5 --replay-n 40
	$(BIN)/python benchmarks/bench_daemon.py --runs 1 --positions 5 --rounds 1
	$(BIN)/python benchmarks/check_affected.py --steps 8
	$(BIN)/python benchmarks/bench_serve.py --quick
	$(BIN)/python benchmarks/bench_mcp.py --quick

clean:
	rm -rf $(VENV) build *.egg-info
