"""Issue 22, item 10: the systemd unit's hardening. `systemd-analyze security --offline=yes` rates
the shipped unit at most 2.5 (it was 3.7), and the daemon still runs a clip to the end, at a normal
speed, under a /proc mounted the way ProtectProc=invisible mounts it (a private procfs with
hidepid=invisible in its own mount and PID namespace: needs root, as in CI). ProcSubset=pid is left
out: under subset=pid TFLite's cpuinfo probe fails and the clip ran at 0.2 fps."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

import pytest
import yaml

from test_daemon import REPO, write_config

UNIT = REPO / "systemd" / "fashion-edge.service"
WANTED = {"SystemCallFilter": "@system-service", "SystemCallArchitectures": "native", "ProtectProc": "invisible",
          "RestrictNamespaces": "yes", "LockPersonality": "yes"}


def directives() -> dict[str, str]:
    out = {}
    for line in UNIT.read_text().splitlines():
        if "=" in line and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            out[key.strip()] = value.strip()
    return out


def test_unit_sets_the_issue_22_hardening():
    found = directives()
    assert {k: found.get(k) for k in WANTED} == WANTED


def test_systemd_analyze_rates_the_unit_at_most_2_5():
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed (apt-get install systemd)")
    result = subprocess.run(["systemd-analyze", "security", "--offline=yes", "--no-pager", str(UNIT)],
                            capture_output=True, text=True, timeout=60)
    if "--offline" in result.stderr and result.returncode != 0:
        pytest.skip(f"this systemd-analyze has no --offline (systemd 250+): {result.stderr.strip()[:200]}")
    match = re.search(r"Overall exposure level for fashion-edge\.service: ([0-9.]+)", result.stdout)
    assert match, result.stdout[-2000:] + result.stderr[-2000:]
    assert float(match.group(1)) <= 2.5, result.stdout[-3000:]


def test_daemon_runs_under_protectproc_invisible(tmp_path, shared_dir, mosquitto):
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("a private /proc needs root and unshare (CI runs as root)")
    probe = subprocess.run(["unshare", "-m", "-p", "-f", "sh", "-c",
                            "mount -t proc -o hidepid=invisible proc /proc && test -d /proc/self/fd"],
                           capture_output=True, text=True, timeout=30)
    if probe.returncode != 0:
        pytest.skip(f"cannot mount a private procfs here: {probe.stderr.strip()[:200]}")
    config = write_config(tmp_path, shared_dir)
    data = yaml.safe_load(config.read_text())
    data["cameras"][0]["fps_cap"] = 5
    config.write_text(yaml.safe_dump(data))
    command = (f"mount -t proc -o hidepid=invisible proc /proc && exec {sys.executable} -m edge run "
               f"--config {config} --mqtt-host 127.0.0.1 --mqtt-port {mosquitto.port} --max-frames 150")
    import time

    started = time.monotonic()
    result = subprocess.run(["unshare", "-m", "-p", "-f", "sh", "-c", command], capture_output=True, text=True,
                            cwd=REPO, timeout=240, env=dict(os.environ, PYTHONUNBUFFERED="1"))
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-3000:]
    assert "Traceback" not in out and "camera entrance: 150 frames" in out, out[-3000:]
    assert "Error in cpuinfo" not in out, out[-3000:]  # what ProcSubset=pid gave (and 0.2 fps)
    assert time.monotonic() - started < 120, out[-3000:]  # 150 frames at a normal speed
