#!/usr/bin/env bash
# Installs everything the test suite needs on a fresh Debian/Ubuntu machine (run as root or in a venv):
# mosquitto (real broker for the MQTT tests), chromium + chromium-driver (browser test), CPU-only torch first (so ultralytics does not pull
# GBs of CUDA), then the project with its dev, train and detect extras.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages: mosquitto (the MQTT tests' real broker), chromium + chromium-driver (the web page
# test drives a real headless browser through selenium; tests/test_integrations_daemon.py).
APT=()
if ! command -v mosquitto >/dev/null 2>&1 && [ ! -x /usr/sbin/mosquitto ]; then APT+=(mosquitto); fi
if ! command -v chromium >/dev/null 2>&1; then APT+=(chromium); fi
if ! command -v chromedriver >/dev/null 2>&1; then APT+=(chromium-driver); fi
if [ ${#APT[@]} -gt 0 ]; then
    if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq && apt-get install -y -qq "${APT[@]}" >/dev/null
    elif [[ " ${APT[*]} " == *" mosquitto "* ]]; then
        echo "install ${APT[*]} (e.g. sudo apt-get install ${APT[*]}): the MQTT tests need a real broker" >&2
        exit 1
    else
        echo "warning: install ${APT[*]} for the web page's browser test (or set FASHION_EDGE_NO_BROWSER=1)" >&2
    fi
fi

PIP="python3 -m pip install -q --disable-pip-version-check"
# CPU torch: on these machines pip finds the local 2.13.0 CPU wheel; elsewhere use the CPU index:
#   pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu
python3 -c "import torch" 2>/dev/null || $PIP "torch==2.13.0"
printf 'torch==2.13.0\ntorchvision==0.28.0\n' > /tmp/fashion-edge-constraints.txt
$PIP -c /tmp/fashion-edge-constraints.txt -e ".[dev,train,detect]"
# ultralytics pulls the GUI opencv wheel; keep the headless one authoritative (same version).
python3 -c "import cv2" || $PIP --force-reinstall --no-deps opencv-python-headless
