# frugalml — every target creates .venv on demand.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip
# One BLAS thread per process: idle OpenBLAS threads spin and slow 2-core machines 10-20x.
export OMP_NUM_THREADS ?= 1
export OPENBLAS_NUM_THREADS ?= 1
export MKL_NUM_THREADS ?= 1

.PHONY: report test test-all bench bench-slow bench-smoke lint install install-dev clean

$(VENV)/.installed: pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -c constraints.txt -e '.[all]'
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed
	$(PIP) install -q -c constraints.txt -e '.[all,dev]'
	touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

# the report runs the benchmarks of this checkout (benchmarks/bench_*.py with REPORT_AREA)
report: $(VENV)/.installed
	$(BIN)/frugalml report --quick

test: $(VENV)/.installed-dev
	$(BIN)/python -m pytest

test-all: $(VENV)/.installed-dev
	$(BIN)/python -m pytest -m "slow or not slow"

bench: $(VENV)/.installed
	@for b in benchmarks/bench_*.py; do \
		case $$b in *_scale.py) continue;; esac; \
		echo "== $$b"; $(BIN)/python $$b || exit 1; \
	done

# Every benchmark script at tiny size, results in temporary directories (its smoke tests).
bench-smoke: $(VENV)/.installed-dev
	$(BIN)/python -m pytest -m "slow or not slow" tests/benchmarks

# Scale benchmarks: large data on disk (e.g. 10.5 GB of ImageNet-size features), tens of minutes.
bench-slow: $(VENV)/.installed
	@for b in benchmarks/bench_*_scale.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

clean:
	rm -rf $(VENV) frugalml-report .pytest_cache .ruff_cache
