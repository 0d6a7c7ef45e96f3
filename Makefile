# Two commands for a fresh machine (see README):
#   make demo   creates .venv, installs everything, runs the pipeline on sample scans
#   make test   creates .venv if needed, runs the whole test suite
# The install order avoids measured dependency traps: torch first (from the
# machine's disk), then basicsr without build isolation (else pip builds it against a second,
# downloaded torch), then the project itself.

PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml Makefile | sha256sum | cut -c1-12)

# Developers and CI keep the real weights beside the project; users fetch or import theirs.
SHARED_MODELS := $(wildcard $(abspath ../shared/models))
ifneq ($(SHARED_MODELS),)
export RESTORIUM_MODELS_DIR ?= $(SHARED_MODELS)
endif

.PHONY: install deps system-deps weights demo lint typecheck test test-fast bench bench-scale bench-catalog bench-quality clean-demo

# Debian tools the tests drive for real: exiftool reads masters back like an auditor would,
# Chromium + ChromeDriver run the review page's browser tests. Installed when missing and we may
# (root or passwordless sudo); otherwise the tests that need them skip and say why.
SYSTEM_PKGS := libimage-exiftool-perl chromium chromium-driver
SUDO := $(shell [ "$$(id -u)" = 0 ] && echo "" || (sudo -n true 2>/dev/null && echo sudo -n) || echo none)

# OpenSeadragon for the review page's deep zoom: fetched from the npm registry when installing
# (downloaded code is not committed), checked against the tarball's published integrity, used as
# it is (no build step). Without npm the review page's deep zoom is missing and its browser tests skip.
OSD_VERSION := 6.1.1
OSD_INTEGRITY := sha512-g4iKe2q8B642SaBT3+x4ZF3/8b1TxPPydyjmtrOLgDrlYWMKd9ZXM+1Cb/xa9DVySkvs/7l6HR1nHKfD5F3Tsw==
OSD := flows/review/static/openseadragon/openseadragon.min.js

install: deps weights

# What the tests and the linters need: everything but the fine-tuned weights (the tests read
# ../shared/models and make their own small models), so `make test` does not spend the fine-tune's
# 3-60 minutes (CPU-dependent, see README) on weights it never opens.
deps: system-deps $(STAMP) $(OSD)

$(OSD):
	@if ! command -v npm >/dev/null; then echo "note: npm is missing: no OpenSeadragon, the deep-zoom tests will skip"; exit 0; fi; \
	tmp=$$(mktemp -d) && (cd $$tmp && npm pack --silent openseadragon@$(OSD_VERSION) >/dev/null) && \
	got=$$(python3 -c 'import base64,hashlib,sys; print("sha512-" + base64.b64encode(hashlib.sha512(open(sys.argv[1], "rb").read()).digest()).decode())' $$tmp/openseadragon-$(OSD_VERSION).tgz) && \
	if [ "$$got" != "$(OSD_INTEGRITY)" ]; then echo "openseadragon-$(OSD_VERSION).tgz: integrity $$got, expected $(OSD_INTEGRITY)"; rm -rf $$tmp; exit 1; fi && \
	tar -xzf $$tmp/openseadragon-$(OSD_VERSION).tgz -C $$tmp package/build/openseadragon/openseadragon.min.js package/LICENSE.txt && \
	cp $$tmp/package/LICENSE.txt $(dir $(OSD))LICENSE.txt && cp $$tmp/package/build/openseadragon/openseadragon.min.js $(OSD) && \
	rm -rf $$tmp

system-deps:
	@if command -v exiftool >/dev/null && command -v chromium >/dev/null && command -v chromedriver >/dev/null; then :; \
	elif [ "$(SUDO)" = none ] || ! command -v apt-get >/dev/null; then \
	  echo "note: cannot install $(SYSTEM_PKGS) here; the tests that need them will skip"; \
	else DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q $(SYSTEM_PKGS) >/dev/null \
	  || { $(SUDO) apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q $(SYSTEM_PKGS) >/dev/null; } \
	  || echo "note: apt-get could not install $(SYSTEM_PKGS); the tests that need them will skip"; fi

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -U pip setuptools wheel
	$(BIN)/pip install -q torch==2.14.1 torchvision==0.29.1
	$(BIN)/pip install -q --no-build-isolation basicsr==1.4.2
	$(BIN)/pip install -q -e '.[dev]'
	$(BIN)/pip check
	rm -f $(VENV)/.installed-* && touch $@

# The archival upscaler nobody publishes (restorium-fidelity-x4v3), made on install from its
# published parent in ../shared/models and the 56 CBSD68 photographs bench/quality.py never scores
# (models/prepare.py: 2.5-6 min on 2 cores with bf16 the first time, seconds once made). It goes into weights/
# (ignored by git) beside links to the shared weights; the demo and benchmarks use that folder.
WEIGHTS := weights
MADE_MODELS := $(if $(SHARED_MODELS),$(abspath $(WEIGHTS)))

weights: $(STAMP)
	@if [ -z "$(SHARED_MODELS)" ]; then echo "note: no ../shared/models: make the archival models with 'restorium models prepare PHOTOS... --from PARENTS'"; exit 0; fi; \
	$(BIN)/restorium models prepare --models-dir $(WEIGHTS) --from $(SHARED_MODELS) $$($(BIN)/python bench/quality.py --held-out)

demo: install
	$(if $(MADE_MODELS),RESTORIUM_MODELS_DIR=$(MADE_MODELS)) $(BIN)/restorium demo --home archive-demo

# Lint first: pyflakes, pycodestyle, import order, and a reason on every broad except (pyproject);
# then the types (mypy: its settings and the packages it checks are in pyproject too).
lint: deps
	$(BIN)/ruff check .
	$(BIN)/mypy

typecheck: deps
	$(BIN)/mypy

# Screenshots the browser tests take (the deep-zoom review page) are kept in build/test-artifacts.
test: deps lint
	RESTORIUM_TEST_ARTIFACTS=$(CURDIR)/build/test-artifacts $(BIN)/python -m pytest

test-fast: deps
	$(BIN)/python -m pytest -m "not slow"

bench: install
	$(BIN)/python bench/upscale_overhead.py --limit 0

bench-scale: install  # ~15 min on 2 cores: overhead, driver memory at 500/2,000 scans, 1 vs 2 workers
	$(BIN)/python bench/scale.py

bench-catalog: install  # ~5 min: find/audit latency at 1,000,000 events, SQLite and PostgreSQL
	$(BIN)/python bench/catalog_queries.py

bench-quality: install  # ~5 min: PSNR/SSIM vs ground truth, bicubic / Real-ESRGAN CLI / archival
	$(if $(MADE_MODELS),RESTORIUM_MODELS_DIR=$(MADE_MODELS)) $(BIN)/python bench/quality.py
	$(if $(MADE_MODELS),RESTORIUM_MODELS_DIR=$(MADE_MODELS)) $(BIN)/python bench/quality.py --validation

clean-demo:
	rm -rf archive-demo
