# Everything runs from a fresh Debian 12 clone: `make demo`, `make test`. All targets are idempotent.
#   make / make setup   Debian packages (QGIS) when missing, the backend venv (.venv), the QGIS test venv (.venv-qgis)
#   make demo           DB-CR through qgis_process on the bundled sample -> demo-output/ (GeoTIFF + before/after PNG)
#   make test           backend + model tests (.venv), then QGIS tests (real QGIS, headless)
#   make bench | gpu-check | lint | clean

SHELL := /bin/bash
.DEFAULT_GOAL := setup

PYTHON ?= python3
QGIS_PYTHON := /usr/bin/python3
VENV := .venv
QGIS_VENV := .venv-qgis
VENV_STAMP := $(VENV)/.installed
QGIS_VENV_STAMP := $(QGIS_VENV)/.installed
QGIS_TEST_REQUIREMENTS := pytest==9.2.0 pytest-qgis==5.0.2

SAMPLE_S2 := sample/ROIs1868_summer_s2_cloudy_19_p30.tif
SAMPLE_S1 := sample/ROIs1868_summer_s1_19_p30.tif
DEMO := $(CURDIR)/demo-output
# The demo first learns from the sample scene itself (fine-tuning steps on its clear half, about a minute on a CPU):
# the shipped lite model, trained on a few dozen chips, would otherwise darken this hazy tropical scene.
DEMO_ADAPT ?= 60

.PHONY: setup system-deps demo test test-backend test-qgis bench gpu-check lint clean

setup: $(VENV_STAMP) $(QGIS_VENV_STAMP)

system-deps:
	@bash scripts/system-deps.sh

# The backend's own environment: never QGIS's Python, never its site-packages.
$(VENV_STAMP): backend/requirements.txt backend/requirements-nodeps.txt requirements-dev.txt | system-deps
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -r backend/requirements.txt -r requirements-dev.txt
	$(VENV)/bin/pip install --no-deps -r backend/requirements-nodeps.txt
	touch $@

# QGIS's own Python (Debian's numpy, GDAL, PyQt) plus the test runner: nothing else goes in here.
$(QGIS_VENV_STAMP): Makefile | system-deps
	test -x $(QGIS_VENV)/bin/python || $(QGIS_PYTHON) -m venv --system-site-packages $(QGIS_VENV)
	$(QGIS_VENV)/bin/pip install $(QGIS_TEST_REQUIREMENTS)
	touch $@

demo: $(VENV_STAMP) | system-deps
	mkdir -p $(DEMO)
	$(QGIS_PYTHON) scripts/qgis_sandbox.py run cloudremoval:dbcr -- \
		OPTICAL=$(CURDIR)/$(SAMPLE_S2) SAR=$(CURDIR)/$(SAMPLE_S1) NFE=1 ADAPT=$(DEMO_ADAPT) OUTPUT=$(DEMO)/cloud-free.tif
	$(VENV)/bin/python -m backend preview --before $(SAMPLE_S2) --after $(DEMO)/cloud-free.tif \
		--png $(DEMO)/before-after.png
	@echo
	@echo "Cloud-free GeoTIFF: $(DEMO)/cloud-free.tif"
	@echo "Before/after PNG:   $(DEMO)/before-after.png"

test: test-backend test-qgis

test-backend: $(VENV_STAMP)
	$(VENV)/bin/python -m pytest tests/backend tests/models -q

test-qgis: $(VENV_STAMP) $(QGIS_VENV_STAMP)
	QT_QPA_PLATFORM=offscreen $(QGIS_VENV)/bin/python -m pytest tests/qgis -q

# End to end (MPix/s, peak RSS, the bare network and the pipeline's overhead) on mosaics of the sample, torch and
# ONNX Runtime, then seconds per tile of each method on both runtimes. Run it alone: it uses every core.
# A synthetic full Sentinel-2 tile too (25 to 35 minutes per runtime on 2 CPU cores): make bench BENCH_SIZES=1024,4096,10980
BENCH_SIZES ?= 1024,4096
bench: $(VENV_STAMP)
	$(VENV)/bin/python -m backend bench --sizes $(BENCH_SIZES)
	$(VENV)/bin/python -m backend bench --per-tile

# On a machine with CUDA: each method on torch CUDA and ONNX Runtime's CUDA provider against the CPU (pixels,
# s/tile, peak GPU memory) -> table on stdout, gpu-check.json. Without CUDA it checks the CPU path and says so.
gpu-check: $(VENV_STAMP)
	$(VENV)/bin/python scripts/gpu_check.py --json gpu-check.json

lint: $(VENV_STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/mypy plugin processing_provider

clean:
	rm -rf $(DEMO) .pytest_cache .mypy_cache .ruff_cache .qgis-settings

# The plugin zip for plugins.qgis.org (<= 25 MB, no binaries, top folder cloud_removal/): dist/cloud_removal.zip
.PHONY: package
package:
	$(QGIS_PYTHON) scripts/package.py --output dist/cloud_removal.zip
