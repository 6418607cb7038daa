# mosrm-bench: every target depends on an idempotent set-up step, so a fresh machine needs only `make`.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.setup-stamp
# command -> Debian package it comes from (bubblewrap sandboxes submitted model code; chromium
# and its driver run the board's browser test, tests/test_site_browser.py)
APT_COMMANDS := espeak-ng:espeak-ng ffmpeg:ffmpeg bwrap:bubblewrap chromium:chromium chromedriver:chromium-driver
TORCH_VERSION := 2.13.0

.PHONY: setup run train paper test bench calibrate lint clean

setup: $(STAMP)

$(STAMP): pyproject.toml Makefile constraints.txt
	@missing=""; for pair in $(APT_COMMANDS); do command -v $${pair%%:*} >/dev/null || missing="$$missing $${pair#*:}"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  SUDO=""; [ "$$(id -u)" -ne 0 ] && SUDO="sudo"; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi
	@[ -x $(PY) ] || python3 -m venv $(VENV)
	@# torch first: letting pip resolve it pulls a multi-GB CUDA build
	$(PY) -m pip install -q torch==$(TORCH_VERSION)
	$(PY) -m pip install -q -e '.[dev]' -c constraints.txt
	@touch $(STAMP)

# the official demo board: the workspace leaderboard/ (no submissions or tasks of its own: the
# package's and the reference models), its results, probes and board committed
run: setup
	$(VENV)/bin/mosrm --workspace leaderboard run --out leaderboard --probes

# re-create the committed reference models from training/ (byte for byte on the same machine and
# software), then the trust manifest that lets exactly those folders run in-process
REFERENCE := benchmark/baselines/reference
train: setup
	@set -e; for config in training/demo-*.yaml; do \
	  name=$$(basename $$config .yaml); rm -rf $(REFERENCE)/$$name $(REFERENCE)/$$name-*; \
	  $(VENV)/bin/mosrm train $$config --out $(REFERENCE)/$$name; \
	done
	$(PY) -m benchmark.scoring.trust --write

# the paper's reference baselines (issue 25): every corpus present under $MOSRM_HOME/data (or
# prepared before), training/paper-*.yaml trained once per seed (cached, resumable), everything
# scored, the board and paper.md (mean ± sd over seeds) in paper/board; on a GPU box, `mosrm
# train training/paper-bt.yaml --plan` first says what it will cost
paper: setup
	$(VENV)/bin/mosrm --workspace paper run --paper --training training

test: setup
	MOSRM_REQUIRE_SANDBOX=1 $(PY) -m pytest -q

# coverage of the intervals by simulation with known truth (issue 23; minutes, not in make test)
calibrate: setup
	rm -f benchmarks/calibration.jsonl.part
	$(PY) benchmarks/calibrate.py --replicates 1000 --seed 2 --shapes demo --out benchmarks/calibration.jsonl.part & \
	$(PY) benchmarks/calibrate.py --replicates 1000 --seed 2 --shapes bvcc --out benchmarks/calibration.jsonl.part.bvcc; wait
	cat benchmarks/calibration.jsonl.part.bvcc >> benchmarks/calibration.jsonl.part
	rm benchmarks/calibration.jsonl.part.bvcc
	mv benchmarks/calibration.jsonl.part benchmarks/calibration.jsonl
	rm -f benchmarks/calibration-ceiling.jsonl
	$(PY) benchmarks/calibrate.py --ceiling --replicates 1000 --shapes demo bvcc --out benchmarks/calibration-ceiling.jsonl

bench: setup
	$(PY) -m pytest -q benchmarks --benchmark-enable --benchmark-only

lint: setup
	$(VENV)/bin/ruff check benchmark tests benchmarks examples
	$(VENV)/bin/ruff format --check benchmark tests benchmarks examples
	$(VENV)/bin/mypy

clean:
	rm -rf $(VENV) .mosrm-cache build *.egg-info
