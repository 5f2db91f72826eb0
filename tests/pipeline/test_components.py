"""The component table and the one argv builder: exact command lines, config only via env."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from pipeline import components as comps
from pipeline.components import child_env
from pipeline.settings import load_settings
from pipeline.supervisor.daemon import build_specs

PY = sys.executable


@pytest.fixture
def cfg(tmp_path):
    return load_settings(None, {"storage.data_dir": str(tmp_path / "data")})


@pytest.mark.parametrize(
    ("component", "in_processor", "tail"),
    [
        ("broker", True, ["broker", "run"]),
        ("processor", True, ["process", "--mode", "stream", "--with-detector"]),
        ("processor", False, ["process", "--mode", "stream"]),
        ("detector", False, ["detect", "--mode", "stream"]),
        ("generator", True, ["generate", "--rate", "1000"]),
    ],
)
def test_component_argv_exact(cfg, component, in_processor, tail):
    cfg.detector.in_processor = in_processor
    assert comps.component_argv(component, cfg, frozen=False) == [PY, "-m", "pipeline", *tail]
    assert comps.component_argv(component, cfg, frozen=True) == [PY, *tail]


def test_frozen_defaults_to_sys_frozen(cfg, monkeypatch):
    monkeypatch.delattr(sys, "frozen", raising=False)
    assert comps.component_argv("broker", cfg) == [PY, "-m", "pipeline", "broker", "run"]
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    assert comps.component_argv("broker", cfg) == [PY, "broker", "run"]
    assert comps.supervisor_argv() == [PY, "pipeline", "supervise"]


def test_generator_rate_is_formatted_exactly(cfg):
    cfg.generator.rate = 250.5
    argv = comps.component_argv("generator", cfg, frozen=True)
    assert argv == [PY, "generate", "--rate", "250.5"]


def test_unknown_component_is_a_clear_error(cfg):
    with pytest.raises(ValueError, match="unknown component 'kafka'.*broker, processor"):
        comps.component_argv("kafka", cfg)
    with pytest.raises(ValueError, match="unknown component 'x'"):
        comps.resolve(["x"], cfg)


def test_default_components_follow_the_config(cfg):
    assert comps.default_components(cfg) == ["broker", "processor", "generator"]
    cfg.detector.in_processor = False
    assert comps.default_components(cfg) == ["broker", "processor", "detector", "generator"]
    cfg.orchestrator.generator = False
    cfg.kafka.bootstrap_servers = "kafka.example:9092"
    assert comps.default_components(cfg) == ["processor", "detector"]


def test_resolve_adds_needs_and_dependents_go_downstream(cfg):
    assert comps.resolve(["generator"], cfg) == ["broker", "generator"]
    # the detector runs inside the processor by default
    assert comps.resolve(["detector"], cfg) == ["broker", "processor"]
    cfg.detector.in_processor = False
    assert comps.resolve(["detector"], cfg) == ["broker", "processor", "detector"]
    assert comps.dependents(["broker"]) == ["broker", "processor", "detector", "generator"]
    assert comps.dependents(["processor"]) == ["processor", "detector"]
    assert comps.dependents(["generator"]) == ["generator"]


def test_specs_in_dependency_order_with_broker_probe(cfg):
    specs = build_specs(cfg)
    assert [s.name for s in specs] == ["broker", "processor", "generator"]
    broker, processor, generator = specs
    assert broker.ready is not None and processor.ready is None
    assert processor.needs == ("broker",)
    assert broker.stop_timeout_s >= cfg.broker.stop_timeout_s + 15
    cfg.kafka.bootstrap_servers = "kafka.example:9092"
    assert [s.name for s in build_specs(cfg)] == ["processor", "generator"]


def test_argv_carries_no_secret_and_env_carries_the_config(tmp_path, monkeypatch):
    monkeypatch.setenv("LAKEWATCH_KAFKA__TOPIC", "inherited-topic")  # must not leak through
    secret = "s3cr3t-Pa55"
    cfg = load_settings(
        None,
        {
            "storage.data_dir": str(tmp_path / "d"),
            "kafka.topic": "web-logs",  # back to the default, overriding the inherited var
            "kafka.security_protocol": "SASL_SSL",
            "kafka.sasl_mechanism": "PLAIN",
            "kafka.sasl_username": "alice",
            "kafka.sasl_password": secret,
            "generator.rate": 42,
            "broker.port": 29092,
        },
    )
    for spec in build_specs(cfg):
        assert all(secret not in a for a in spec.argv), spec.argv
        assert spec.env["LAKEWATCH_KAFKA__SASL_PASSWORD"] == secret
    env = child_env(cfg)
    assert "LAKEWATCH_KAFKA__TOPIC" not in env
    assert env["LAKEWATCH_GENERATOR__RATE"] == "42.0"
    # A real child process rebuilds exactly this configuration from the environment alone.
    code = (
        "import json; from pipeline.settings import load_settings; s = load_settings();"
        "d = s.model_dump(mode='json'); d['kafka']['sasl_password'] = "
        "s.kafka.sasl_password.get_secret_value(); print(json.dumps(d))"
    )
    out = subprocess.run([PY, "-c", code], env=env, capture_output=True, text=True, check=True)
    child = json.loads(out.stdout)
    mine = cfg.model_dump(mode="json")
    mine["kafka"]["sasl_password"] = secret
    assert child == mine
    assert child["kafka"]["topic"] == "web-logs"


def test_status_table_is_aligned_and_readable():
    from pipeline.commands.pipeline import format_table

    row = {"running": True, "state": "running", "pid": 4242, "uptime_s": 3725.0,
           "last_heartbeat_age_s": 1.2, "events_per_s": 1234.5, "kafka_lag": 17,
           "last_commit_age_s": 75.0, "restarts": 2, "last_crash": None,
           "last_error": "query ingest failed: " + "x" * 80, "log": "/x/processor.log"}
    idle = {**row, "running": False, "state": "stopped", "pid": None, "uptime_s": None,
            "last_heartbeat_age_s": None, "events_per_s": None, "kafka_lag": None,
            "last_commit_age_s": None, "restarts": 0, "last_error": None}
    st = {"supervisor": {"running": True, "pid": 99, "state": "running", "log": "/x/s.log"},
          "attached": False, "bootstrap_servers": "127.0.0.1:19092",
          "components": {"processor": row, "generator": idle}}
    lines = format_table(st).splitlines()
    assert lines[0] == "supervisor: running (pid 99)   kafka: 127.0.0.1:19092"
    assert lines[1].split() == ["component", "state", "pid", "uptime", "heartbeat", "events/s",
                                "lag", "last", "commit", "restarts", "last", "error"]
    assert lines[2].split()[:9] == ["processor", "running", "4242", "1h02m", "1s", "ago",
                                    "1,234.5", "17", "1m15s"]
    assert lines[2].endswith("query ingest failed: " + "x" * 38 + "…")
    assert lines[3].split() == ["generator", "stopped"] + ["-"] * 6 + ["0", "-"]
    # columns line up: every row's "restarts" cell starts where the header's does
    col = lines[1].index("restarts")
    assert lines[2][col] == "2" and lines[3][col] == "0"


def test_stop_and_restart_targets(cfg):
    from pipeline.supervisor.control import restart_targets, stop_targets

    assert stop_targets(["processor"], cfg) == ["processor"]  # the broker stays
    assert stop_targets(["broker"], cfg) == ["broker", "processor", "generator"]
    assert restart_targets(["processor"], cfg) == ["processor"]
    assert restart_targets(["detector"], cfg) == ["processor"]  # hosted by the processor
    cfg.detector.in_processor = False
    assert stop_targets(["processor"], cfg) == ["processor", "detector"]
    assert restart_targets(["detector", "generator"], cfg) == ["detector", "generator"]
    cfg.kafka.bootstrap_servers = "kafka.example:9092"
    assert restart_targets(["broker"], cfg) == []
    assert stop_targets(["broker"], cfg) == ["processor", "detector", "generator"]
