#!/usr/bin/env bash
# Installs everything the test suite needs on a fresh Debian/Ubuntu machine (run as root or in a venv):
# mosquitto (real broker for the MQTT tests), postgresql (the chain tests' server), chromium + chromium-driver (browser test), CPU-only torch first (so ultralytics does not pull
# GBs of CUDA: a local CPU wheel when pip has one, else PyTorch's CPU index), then the project with its dev, train and
# detect extras (+ chain: psycopg). Says what it does, one "install-dev:" line per step.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages: mosquitto (the MQTT tests' real broker), chromium + chromium-driver (the web page
# test drives a real headless browser through selenium; tests/test_integrations_daemon.py).
APT=()
if ! command -v mosquitto >/dev/null 2>&1 && [ ! -x /usr/sbin/mosquitto ]; then APT+=(mosquitto); fi
if ! command -v chromium >/dev/null 2>&1; then APT+=(chromium); fi
if ! command -v chromedriver >/dev/null 2>&1; then APT+=(chromium-driver); fi
# postgresql: the chain tests (tests/test_chain_*.py) start their own server with its initdb / pg_ctl.
if ! command -v initdb >/dev/null 2>&1 && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then APT+=(postgresql); fi
if [ ${#APT[@]} -gt 0 ]; then
    if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq && apt-get install -y -qq "${APT[@]}" >/dev/null
    elif [[ " ${APT[*]} " == *" mosquitto "* || " ${APT[*]} " == *" postgresql "* ]]; then
        echo "install ${APT[*]} (e.g. sudo apt-get install ${APT[*]}): the MQTT tests need a real broker, the chain tests PostgreSQL" >&2
        exit 1
    else
        echo "warning: install ${APT[*]} for the web page's browser test (or set FASHION_EDGE_NO_BROWSER=1)" >&2
    fi
fi

PIP="python3 -m pip install -q --disable-pip-version-check"
TORCH="torch==2.13.0"
TORCHVISION="torchvision==0.28.0"
CPU_INDEX="https://download.pytorch.org/whl/cpu"
# CPU torch first. PyPI's Linux torch is a multi-GB CUDA build: a machine whose pip has no local CPU
# wheel (a find-links folder or file:// index, as on the project's machines) takes torch and
# torchvision from PyTorch's CPU-only index. Which one pip would use: its dry-run resolution.
torch_source() {
    python3 -m pip install --dry-run --no-deps --ignore-installed --quiet --report - "$TORCH" 2>/dev/null |
        python3 -c "import json, sys, urllib.parse; print(urllib.parse.unquote(json.load(sys.stdin)['install'][0]['download_info']['url']))" 2>/dev/null
}
if python3 -c "import torch" 2>/dev/null; then
    echo "install-dev: torch $(python3 -c 'import torch; print(torch.__version__)') is already installed"
else
    url="$(torch_source || true)"
    if [[ "$url" == file://* ]]; then
        echo "install-dev: $TORCH from the local wheel pip finds (${url#file://})"
        $PIP "$TORCH"
    else
        echo "install-dev: $TORCH and $TORCHVISION from the CPU-only index $CPU_INDEX (not PyPI's CUDA build)"
        $PIP "$TORCH" "$TORCHVISION" --index-url "$CPU_INDEX"
    fi
fi
echo "install-dev: the project with its dev, train, detect and chain extras (editable), torch pinned"
printf '%s\n%s\n' "$TORCH" "$TORCHVISION" > /tmp/fashion-edge-constraints.txt
$PIP -c /tmp/fashion-edge-constraints.txt -e ".[dev,train,detect,chain]"
# ultralytics pulls the GUI opencv wheel; keep the headless one authoritative (same version).
python3 -c "import cv2" || $PIP --force-reinstall --no-deps opencv-python-headless
