# Two commands do all the set-up on a fresh machine:
#   make demo   # create the environment, generate demo data, run the whole pipeline on it
#   make test   # create the environment, run the test suite (what CI runs)
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# PyTorch: the CPU build where there is no GPU. torch==2.13.0 resolves to the CPU wheel on machines
# that carry it locally; elsewhere pass e.g. TORCH_PIP_ARGS="--index-url https://download.pytorch.org/whl/cpu"
# (or, on a GPU machine, the CUDA index you want). A plain `torch` from PyPI is a multi-GB CUDA build.
TORCH_SPEC ?= torch==2.13.0
TORCH_PIP_ARGS ?=
EXTRAS ?= hf,train,dask,eval,web,test
OUT ?= out/demo

.PHONY: setup demo test test-all bench clean train-mt

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "$(TORCH_SPEC)" $(TORCH_PIP_ARGS)
	$(BIN)/python -m pip install -q -e ".[$(EXTRAS)]"
	# img2dataset pulls the Python 3.6 `dataclasses` backport. It shadows the standard library wherever
	# site-packages comes first on sys.path, as in Prefect's embedded server (uvicorn --app-dir), which
	# then cannot start. Python >= 3.7 has the module built in, so the backport is removed.
	$(BIN)/python -m pip uninstall -q -y dataclasses 2>/dev/null || true
	touch $@

demo: setup
	$(BIN)/mblip demo --out $(OUT)

test: setup
	$(BIN)/python -m pytest -q

test-all: setup
	$(BIN)/python -m pytest -q -m "not gpu"

# Retrain the shipped Multi30k translator (about 1.5 h on 2 CPU cores; resumes if interrupted), then
# convert, score and regenerate its card.
MULTI30K ?= ../shared/data/multi30k
train-mt: setup
	$(BIN)/python -m pipeline.nllb.train_small --data $(MULTI30K) --out runs/nllb-multi30k
	$(BIN)/python -m pipeline.nllb.model_card --run runs/nllb-multi30k --data $(MULTI30K) \
		--model pipeline/assets/nllb-multi30k --card data_cards/nllb-multi30k.md

clean:
	rm -rf out .pytest_cache
