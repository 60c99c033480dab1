# Every target creates the virtual environment from the pinned lock file if it
# is missing or stale, so a fresh machine needs nothing but `make demo` / `make test`.
PYTHON310 ?= $(shell command -v python3.10 2>/dev/null || echo /root/.pyenv/versions/3.10.13/bin/python3.10)
VENV      := .venv
PY        := $(VENV)/bin/python
STAMP     := $(VENV)/.snncc-installed
CKPT      := examples/checkpoints/spikingformer_digits.pt

.PHONY: venv demo test lint bench lava-agreement lock clean

venv: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	@test -x $(PY) || $(PYTHON310) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.lock
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	@touch $(STAMP)

demo: $(STAMP)
	$(PY) -m snncc.examples.demo

test: $(STAMP)
	$(PY) -m pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check snncc frontends backends examples tests benchmarks
	$(VENV)/bin/mypy

bench: $(STAMP)
	$(PY) -m benchmarks

# the digits models in real Lava vs acsim on 100 test samples (minutes; not in bench)
lava-agreement: $(STAMP)
	$(PY) -m benchmarks.lava_agreement --clock both

lock: $(STAMP)
	$(PY) -m pip freeze --exclude-editable | sed '1i # Pinned versions of every dependency (pip freeze of a working venv on Python 3.10).\n# Regenerate: make lock' > requirements.lock

clean:
	rm -rf $(VENV) build *.egg-info
