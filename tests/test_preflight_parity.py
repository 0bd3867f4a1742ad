"""Issue 22, items 4 and 5 (config): whatever `run` refuses, `check-config` refuses first with the
same line (one validation path: the config model's validators and edge/preflight.py, which `run`
calls before it starts anything); settings that can never work with an MQTT broker are refused by
both; a config file that is not a regular file, too large or nested too deep is one line, exit 2.

Every case runs the real CLI twice in subprocesses (check-config, then run on the same file) and
compares the error lines after the command's own prefix. `run` gets a time limit: on a config it
wrongly accepts it would start the service (and loop on "broker unreachable")."""

from __future__ import annotations

import os
import resource
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import demo_config_data, free_port

REPO = Path(__file__).resolve().parents[1]


def cli(*args, timeout: float = 90, memory_bytes: int | None = None) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if k != "STATE_DIRECTORY"}

    def limit_memory():  # /dev/zero read to the end would take the machine's memory, not only ours
        if memory_bytes:
            resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))

    return subprocess.run([sys.executable, "-m", "edge", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, cwd=REPO, env=environment, preexec_fn=limit_memory)


def error_lines(result: subprocess.CompletedProcess, command: str) -> list[str]:
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    prefix = f"fashion-edge {command}: error: "
    return [line.removeprefix(prefix) for line in result.stderr.splitlines() if line.startswith(prefix)]


def both_refuse(config: Path, *, run_timeout: float = 60) -> list[str]:
    """check-config and run on ``config``: both exit 2 with the same error lines; returns them."""
    checked = cli("check-config", config)
    assert checked.returncode == 2, f"check-config accepted it:\n{checked.stdout}{checked.stderr[-2000:]}"
    expected = error_lines(checked, "check-config")
    assert expected, checked.stderr
    try:
        ran = cli("run", "--config", config, "--max-frames", "2", timeout=run_timeout)
    except subprocess.TimeoutExpired:
        pytest.fail(f"run accepted the config and kept running (check-config said: {expected})")
    assert ran.returncode == 2, f"run exit {ran.returncode}:\n{ran.stderr[-2000:]}"
    assert error_lines(ran, "run") == expected, ran.stderr[-2000:]
    return expected


@pytest.fixture
def base(tmp_path, shared_dir) -> dict:
    """configs/demo.yaml with absolute paths and its own state directory."""
    data = demo_config_data(shared_dir)
    data["service"] = {"state_dir": str(tmp_path / "state")}
    return data


def write(tmp_path: Path, data: dict, name: str = "bad.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, allow_unicode=False))
    return path


def only_line(lines: list[str], config: Path, field: str, *words: str) -> None:
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"{config}: {field}: "), lines
    for word in words:
        assert word in lines[0], lines


# -- rules: what the rule engine refused only once the cameras started --------------------------

@pytest.mark.parametrize("schedule, field, words", [
    ({"start": "25:00"}, "rules[0].schedule.start", ["'25:00' is not a time of day"]),
    ({"start": "10:61"}, "rules[0].schedule.start", ["'10:61' is not a time of day"]),
    ({"end": "24:30"}, "rules[0].schedule.end", ["'24:30' is not a time of day", "24:00"]),
    ({"start": "24:00"}, "rules[0].schedule.start", ["'24:00' is not a time of day", "23:59"]),
    ({"start": "09:00", "end": "09:00"}, "rules[0].schedule", ["start equals end"]),
])
def test_schedule_times(tmp_path, base, schedule, field, words):
    base["rules"][0]["schedule"] = schedule
    config = write(tmp_path, base)
    only_line(both_refuse(config), config, field, *words)


@pytest.mark.parametrize("key, value, words", [
    ("when", ["dress+"], ["empty garment in 'dress+'"]),
    ("when", ["+"], ["empty garment in '+'"]),
    ("unless", [""], ["empty garment"]),
    ("unless", ["pants", "  "], ["empty garment"]),
])
def test_empty_garment_names(tmp_path, base, key, value, words):
    base["rules"][0][key] = value
    config = write(tmp_path, base)
    only_line(both_refuse(config), config, f"rules[0].{key}", *words)


# -- MQTT TLS ----------------------------------------------------------------------------------

def test_tls_ca_that_is_no_certificate(tmp_path, base):
    ca = tmp_path / "ca.crt"
    ca.write_text("this is no certificate\n")
    base["mqtt"] = {"host": "127.0.0.1", "port": free_port(), "tls": {"ca": str(ca)}}
    config = write(tmp_path, base)
    only_line(both_refuse(config), config, "mqtt.tls", "cannot load TLS files")


def test_tls_cert_without_key(tmp_path, base):
    cert = tmp_path / "client.crt"
    cert.write_text("-----BEGIN CERTIFICATE-----\n")
    base["mqtt"] = {"host": "127.0.0.1", "port": free_port(), "tls": {"cert": str(cert)}}
    config = write(tmp_path, base)
    only_line(both_refuse(config), config, "mqtt.tls", "needs both cert and key")
    base["mqtt"]["tls"] = {"key": str(cert)}
    config = write(tmp_path, base)
    only_line(both_refuse(config), config, "mqtt.tls", "needs both cert and key")


# -- listening sockets -------------------------------------------------------------------------

def test_web_host_that_does_not_resolve(tmp_path, base):
    password = tmp_path / "web-password"
    password.write_text("s3cret\n")
    base["service"]["web"] = {"enabled": True, "listen": f"no-such-host.invalid:{free_port()}",
                              "password_file": str(password)}
    config = write(tmp_path, base)
    only_line(both_refuse(config), config, "service.web.listen", "cannot listen on no-such-host.invalid:")


def test_metrics_port_already_in_use(tmp_path, base):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        base["service"]["metrics"] = {"enabled": True, "listen": f"127.0.0.1:{port}"}
        config = write(tmp_path, base)
        only_line(both_refuse(config), config, "service.metrics.listen",
                  f"cannot listen on 127.0.0.1:{port}", "in use")


def test_web_page_and_metrics_on_one_port(tmp_path, base):
    listen = f"127.0.0.1:{free_port()}"
    base["service"]["web"] = {"enabled": True, "listen": listen}
    base["service"]["metrics"] = {"enabled": True, "listen": listen}
    config = write(tmp_path, base)
    only_line(both_refuse(config), config, "service", "service.metrics.listen", "service.web.listen")


# -- state directory ---------------------------------------------------------------------------

def test_state_dir_that_is_a_file(tmp_path, base):
    state = tmp_path / "state-file"
    state.write_text("not a folder\n")
    base["service"]["state_dir"] = str(state)
    config = write(tmp_path, base)
    only_line(both_refuse(config), config, "service.state_dir", "not a folder")
    assert state.read_text() == "not a folder\n"


def test_state_dir_below_a_file(tmp_path, base):
    state = tmp_path / "state-file"
    state.write_text("not a folder\n")
    base["service"]["state_dir"] = str(state / "deeper")
    config = write(tmp_path, base)
    only_line(both_refuse(config), config, "service.state_dir", "not a folder")


@pytest.mark.parametrize("state_dir", ["/proc/fashion-edge-state", "/proc/self", "/sys/fashion-edge"])
def test_state_dir_under_proc_or_sys(tmp_path, base, state_dir):
    base["service"]["state_dir"] = state_dir
    config = write(tmp_path, base)
    only_line(both_refuse(config), config, "service.state_dir", "kernel")


def test_check_config_leaves_no_state_dir_behind(tmp_path, base):
    config = write(tmp_path, base, "good.yaml")
    result = cli("check-config", config)
    assert result.returncode == 0, result.stderr
    assert not (tmp_path / "state").exists()


# -- never able to work with an MQTT broker ----------------------------------------------------

@pytest.mark.parametrize("prefix, words", [
    ("store/#", ["'#'"]), ("shop+1/alerts", ["'+'"]), ("shop\0one", ["NUL"]), ("$SYS/shop", ["'$'"]),
    ("x" * 1025, ["1024"]),
], ids=["hash", "plus", "nul", "dollar", "long"])
def test_topic_prefix_the_broker_refuses(tmp_path, base, prefix, words):
    base["mqtt"] = {"topic_prefix": prefix}
    config = write(tmp_path, base)
    only_line(both_refuse(config), config, "mqtt.topic_prefix", *words)


@pytest.mark.parametrize("section, key, value, words", [
    (None, "site", "s" * 70_000, ["64"]),
    ("mqtt", "client_id", "c" * 70_000, ["128 bytes"]),
    ("mqtt", "client_id", "é" * 65, ["128 bytes"]),  # 130 bytes of UTF-8
    ("mqtt", "client_id", "", ["at least 1"]),
    ("mqtt", "client_id", "a\0b", ["NUL"]),
    ("mqtt", "username", "u" * 70_000, ["65535 bytes"]),
    ("mqtt", "username", "ü" * 32_768, ["65535 bytes"]),  # 65,536 bytes of UTF-8
    ("mqtt", "username", "a\0b", ["NUL"]),
    ("cameras", "name", "c" * 65, ["64"]),
    ("rules", "name", "r" * 65, ["64"]),
], ids=["site", "client_id-70000", "client_id-130-bytes", "client_id-empty", "client_id-nul", "username-70000",
        "username-65536-bytes", "username-nul", "camera-name", "rule-name"])
def test_lengths_mqtt_cannot_carry(tmp_path, base, section, key, value, words):
    if section is None:
        base[key] = value
        field = key
    elif section in ("cameras", "rules"):
        base[section][0][key] = value
        field = f"{section}[0].{key}"
    else:
        base[section] = {key: value}
        field = f"{section}.{key}"
    config = write(tmp_path, base)
    only_line(both_refuse(config), config, field, *words)


def test_username_with_a_lone_surrogate(tmp_path, base):
    """'\\ud800' in a double-quoted YAML string is a Python str that UTF-8 cannot encode (paho's thread
    would raise encoding it)."""
    base["mqtt"] = {"username": "PLACEHOLDER"}
    config = tmp_path / "bad.yaml"
    config.write_text(yaml.safe_dump(base).replace("PLACEHOLDER", '"a\\ud800"'))
    only_line(both_refuse(config), config, "mqtt.username", "lone surrogate")


def test_discovery_prefix_too_long(tmp_path, base):
    base["mqtt"] = {"discovery": {"enabled": True, "prefix": "h" * 70_000}}
    config = write(tmp_path, base)
    only_line(both_refuse(config), config, "mqtt.discovery.prefix", "1024")


def test_mqtt_password_longer_than_mqtt_allows(tmp_path, base):
    """paho's network thread died packing it (issue 22, 2); now refused before anything starts, and
    the password itself is never printed."""
    secret = tmp_path / "mqtt-password"
    secret.write_text("p" * 65_536)
    base["mqtt"] = {"host": "127.0.0.1", "port": free_port(), "username": "u", "password_file": str(secret)}
    config = write(tmp_path, base)
    lines = both_refuse(config)
    only_line(lines, config, "mqtt.password_file", "65536 bytes")
    assert "ppp" not in lines[0]


def test_longest_accepted_names_pass(tmp_path, base):
    """The limits are not off by one: at them check-config says ok."""
    base["site"] = "s" * 64
    base["mqtt"] = {"client_id": "é" * 64, "username": "u" * 65535, "topic_prefix": "p" * 1024}
    base["cameras"][0]["name"] = "c" * 64
    config = write(tmp_path, base, "long.yaml")
    result = cli("check-config", config)
    assert result.returncode == 0, result.stderr[-2000:]


# -- the config file itself (item 5) -----------------------------------------------------------

def test_config_nested_20000_deep(tmp_path):
    config = tmp_path / "deep.yaml"
    config.write_text("site: " + "[" * 20_000 + "]" * 20_000 + "\n")
    lines = both_refuse(config)
    assert len(lines) == 1 and lines[0].startswith(f"{config}: ") and "nested" in lines[0], lines


def test_config_nested_deeper_than_any_config(tmp_path, base):
    base["rules"][0]["zones"] = [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]
    config = write(tmp_path, base)
    lines = both_refuse(config)
    assert len(lines) == 1 and "nested" in lines[0], lines


def test_yaml_aliases_that_expand_to_millions(tmp_path):
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 8):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]")
    lines.append("cameras: [*a7]")
    config = tmp_path / "laughs.yaml"
    config.write_text("\n".join(lines) + "\n")
    result = both_refuse(config, run_timeout=60)
    assert len(result) == 1 and "values" in result[0], result


def test_run_config_dev_zero():
    """Read until MemoryError before; now refused at once as no regular file (limited to 2 GiB so
    that today's code fails the test instead of taking the machine's memory)."""
    checked = cli("check-config", "/dev/zero", timeout=60, memory_bytes=2 << 30)
    ran = cli("run", "--config", "/dev/zero", timeout=60, memory_bytes=2 << 30)
    for result, command in ((checked, "check-config"), (ran, "run")):
        assert result.returncode == 2, result.stderr[-2000:]
        lines = error_lines(result, command)
        assert lines == ["/dev/zero: not a regular file (a character device); give the config file itself"], lines


def test_config_fifo_does_not_block(tmp_path):
    fifo = tmp_path / "config.yaml"
    os.mkfifo(fifo)
    lines = both_refuse(fifo, run_timeout=30)
    assert lines == [f"{fifo}: not a regular file (a FIFO); give the config file itself"], lines


def test_config_folder(tmp_path):
    lines = both_refuse(tmp_path)
    assert lines == [f"{tmp_path}: not a regular file (a folder); give the config file itself"], lines


def test_config_larger_than_the_cap(tmp_path, base):
    config = write(tmp_path, base, "big.yaml")
    with config.open("a") as out:
        out.write(("# " + "x" * 1000 + "\n") * 1100)  # 1.1 MB of comments
    lines = both_refuse(config)
    assert len(lines) == 1 and "larger than" in lines[0] and "1048576" in lines[0], lines
