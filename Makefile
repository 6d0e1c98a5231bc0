# Every target bootstraps .venv when it is missing or older than pyproject.toml,
# so a fresh clone needs only Python ≥ 3.11 and make.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

INBOX  ?= sample_inputs
OUT    ?= output
PERIOD ?=
TODAY  ?=
SEND   ?=
TEMPLATES_OUT ?= template_workbooks

period_opt = $(if $(PERIOD),--period $(PERIOD))

.PHONY: help templates validate consolidate status remind prefill email bench test lint format samples clean

help:
	@echo "make templates   [PERIOD=YYYY-MM] [OUT=template_workbooks]  生成各单位本期模板"
	@echo "make validate    [INBOX=sample_inputs] [OUT=output]          校验回收的报表"
	@echo "make consolidate [INBOX=sample_inputs] [PERIOD=] [OUT=output] 汇总生成市级调度表"
	@echo "make status      [INBOX=…] [PERIOD=…]                        报送情况"
	@echo "make remind      [INBOX=…] [PERIOD=…] [OUT=output]           催报/退回修改邮件草稿"
	@echo "make prefill     [INBOX=…] [PERIOD=…] [OUT=template_workbooks] 预填下一期模板"
	@echo "make email       [PERIOD=…] [OUT=output] [SEND=1]            生成（或发送）报送邮件"
	@echo "make test | make lint | make bench | make samples"

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

templates: $(STAMP)
	$(BIN)/python -m pipeline templates $(period_opt) --out $(if $(filter command line environment,$(origin OUT)),$(OUT),$(TEMPLATES_OUT))

# exit 1 means some returns were rejected (a result, not a crash); make then reports "Error 1"
validate: $(STAMP)
	@echo "$(BIN)/python -m pipeline validate $(INBOX) --out $(OUT)"
	@$(BIN)/python -m pipeline validate $(INBOX) --out $(OUT); rc=$$?; \
	if [ $$rc -eq 1 ]; then echo "（有报表被退回修改，退出码为 1：这是校验结果，不是程序出错。）"; fi; \
	exit $$rc

consolidate: $(STAMP)
	$(BIN)/python -m pipeline consolidate $(INBOX) $(period_opt) --out $(OUT)

status: $(STAMP)
	$(BIN)/python -m pipeline status $(INBOX) $(period_opt) $(if $(TODAY),--today $(TODAY))

remind: $(STAMP)
	$(BIN)/python -m pipeline remind $(INBOX) $(period_opt) --out $(OUT) $(if $(TODAY),--today $(TODAY))

prefill: $(STAMP)
	$(BIN)/python -m pipeline prefill $(INBOX) $(period_opt) --out $(if $(filter command line environment,$(origin OUT)),$(OUT),$(TEMPLATES_OUT))

email: $(STAMP)
	$(BIN)/python -m pipeline email $(period_opt) --out $(OUT) $(if $(SEND),--send)

samples: $(STAMP)
	$(BIN)/python -m pipeline.samples --out sample_inputs

bench: $(STAMP)
	$(BIN)/python -m pipeline.bench

test: $(STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf output .pytest_cache .mypy_cache .ruff_cache
