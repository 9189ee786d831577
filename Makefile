# The README's two commands. Each creates .venv (pinned by constraints.txt) when it is missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev,plot,sweep,hf]'
	touch $(STAMP)

# A short version of the REINFORCE GAN preset: MLE pretraining, a few adversarial steps, then samples and
# the pretrained-versus-adversarial table (valid NLL on the test split, unique, novelty, D accuracy).
run: $(STAMP)
	$(BIN)/langan train configs/names-reinforce.yaml train.pretrain_steps=250 train.steps=60 eval.every=100 \
		--name make-run --overwrite
	$(BIN)/langan sample runs/make-run --n 20 --temperature 1.0
	$(BIN)/langan eval runs/make-run --n 1000

test: $(STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache
