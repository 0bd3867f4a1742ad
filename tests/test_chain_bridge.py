"""The bridge stanza and the head office's ACL block (issue 24), as text and through the CLI; the
running bridge itself is tested in tests/test_chain_collector.py (two real mosquittos)."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from edge.chain.bridge import BridgeOptions, bridge_stanza, hq_acl
from edge.chain.config import load_hq_config
from edge.errors import FashionEdgeError

REPO = Path(__file__).resolve().parents[1]


def lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line and not line.startswith("#")]


def test_tls_stanza_with_a_client_certificate():
    text = bridge_stanza("store-042", "fashion-edge/store-042", BridgeOptions(
        remote_host="hq.example.com", password="pw", cafile="/etc/mosquitto/hq-ca.crt",
        certfile="/etc/mosquitto/store.crt", keyfile="/etc/mosquitto/store.key"))
    got = lines(text)
    for expected in ("address hq.example.com:8883", "remote_username store-042", "remote_password pw",
                     "remote_clientid fashion-edge-bridge-store-042", "cleansession false", "local_cleansession false",
                     "bridge_cafile /etc/mosquitto/hq-ca.crt", "bridge_certfile /etc/mosquitto/store.crt",
                     "bridge_keyfile /etc/mosquitto/store.key", "bridge_tls_version tlsv1.2", "bridge_insecure false",
                     "upgrade_outgoing_qos true", "max_queued_messages 200000", "restart_timeout 5 60",
                     "notification_topic fashion-edge/store-042/bridge/state"):
        assert expected in got, expected
    topics = [line for line in got if line.startswith("topic ")]
    # out only, QoS 1, own site only; no snapshots / counts / stats
    assert topics and all(t.split()[2:4] == ["out", "1"] for t in topics)
    assert all(t.endswith(" fashion-edge/store-042/") for t in topics)
    assert {t.split()[1] for t in topics} == {"alerts/#", "cameras/+/analytics", "windows/+", "cameras/+/status",
                                             "availability"}


def test_a_custom_prefix_is_mapped_under_the_site():
    text = bridge_stanza("s7", "acme/paris", BridgeOptions(remote_host="hq", tls=False))
    assert "topic alerts/# out 1 acme/paris/ fashion-edge/s7/" in text
    assert "bridge_cafile" not in text and "remote_password" not in lines(text)[0]


def test_refusals_name_the_flag():
    with pytest.raises(FashionEdgeError, match="--ca"):
        bridge_stanza("s", "fashion-edge/s", BridgeOptions(remote_host="hq"))
    with pytest.raises(FashionEdgeError, match="--cert"):
        bridge_stanza("s", "fashion-edge/s", BridgeOptions(remote_host="hq", cafile="ca", certfile="c"))
    with pytest.raises(FashionEdgeError, match="--password-file"):
        bridge_stanza("s", "fashion-edge/s", BridgeOptions(remote_host="hq", cafile="ca", password="a\nb"))


def test_acl_lets_a_store_write_its_own_site_only():
    assert lines(hq_acl("store-042")) == ["user store-042", "topic write fashion-edge/store-042/#"]


def test_cli_writes_the_stanza_0600_and_the_acl(tmp_path):
    password = tmp_path / "pw"
    password.write_text("s3cret\n")
    out, acl = tmp_path / "bridge.conf", tmp_path / "store.acl"
    result = subprocess.run(
        [sys.executable, "-m", "edge", "bridge-config", "--config", str(REPO / "configs" / "store.yaml"),
         "--remote-host", "hq.example.com", "--ca", "/etc/mosquitto/hq-ca.crt", "--password-file", str(password),
         "--out", str(out), "--acl-out", str(acl)], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o600
    assert "remote_password s3cret" in out.read_text() and "s3cret" not in result.stdout + result.stderr
    assert "topic write fashion-edge/store-042/#" in acl.read_text()
    result = subprocess.run([sys.executable, "-m", "edge", "bridge-config", "--config",
                             str(REPO / "configs" / "store.yaml"), "--remote-host", "hq"], cwd=REPO,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "--ca" in result.stderr and len(result.stderr.splitlines()) == 1


def test_the_example_hq_config_loads_and_unknown_keys_are_refused(tmp_path):
    config = load_hq_config(REPO / "configs" / "hq.yaml")
    assert config.mqtt.session_expiry_s == 604800 and config.database.dsn.startswith("postgresql://")
    bad = tmp_path / "hq.yaml"
    bad.write_text("database: {dsn: 'mysql://x'}\n")
    with pytest.raises(FashionEdgeError, match=r"hq.yaml: database: .*postgresql://"):
        load_hq_config(bad)
    bad.write_text("database: {dsn: 'postgresql://x'}\nmqtt: {hots: x}\n")
    with pytest.raises(FashionEdgeError, match=r"mqtt.hots: unknown key"):
        load_hq_config(bad)


def test_collector_unit_is_hardened():
    import re
    import shutil

    unit = REPO / "systemd" / "fashion-edge-collect.service"
    text = unit.read_text()
    assert "ExecStart=/opt/fashion-edge/venv/bin/fashion-edge collect --config /etc/fashion-edge/hq.yaml" in text
    assert "RestartPreventExitStatus=2" in text
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed")
    result = subprocess.run(["systemd-analyze", "security", "--offline=yes", "--no-pager", str(unit)],
                            capture_output=True, text=True, timeout=60)
    if "--offline" in result.stderr and result.returncode != 0:
        pytest.skip("this systemd-analyze has no --offline")
    match = re.search(r"Overall exposure level for fashion-edge-collect\.service: ([0-9.]+)", result.stdout)
    assert match and float(match.group(1)) <= 2.5, result.stdout[-2000:]
