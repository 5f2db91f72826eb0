"""Config precedence (defaults < file < environment < command line) and error messages."""

from __future__ import annotations

import pytest

from pipeline.commands.main import main
from pipeline.settings import ConfigError, load_settings


def write(tmp_path, text):
    path = tmp_path / "lakewatch.toml"
    path.write_text(text)
    return path


def test_defaults_work_without_a_file(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))  # no default file there
    s = load_settings()
    assert s.config_file is None
    assert s.kafka.topic == "web-logs" and s.bootstrap_servers == "127.0.0.1:19092"
    assert not s.attached and s.spark.master == "local[*]" and s.spark.ui_enabled is False


def test_precedence_defaults_file_env_cli(monkeypatch, tmp_path):
    path = write(tmp_path, '[kafka]\ntopic = "from-file"\npartitions = 6\n'
                           '[spark]\nmaster = "local[2]"\n')
    s = load_settings(path)
    assert (s.kafka.topic, s.kafka.partitions, s.spark.master) == ("from-file", 6, "local[2]")
    monkeypatch.setenv("LAKEWATCH_KAFKA__TOPIC", "from-env")
    s = load_settings(path)
    assert (s.kafka.topic, s.kafka.partitions) == ("from-env", 6)
    s = load_settings(path, {"kafka.topic": "from-cli"})
    assert (s.kafka.topic, s.kafka.partitions, s.spark.master) == ("from-cli", 6, "local[2]")
    monkeypatch.setenv("LAKEWATCH_CONFIG", str(path))
    assert load_settings().kafka.partitions == 6


def test_invalid_value_names_the_key_and_what_is_allowed(tmp_path, monkeypatch):
    path = write(tmp_path, "[kafka]\npartitions = 0\n")
    with pytest.raises(ConfigError) as err:
        load_settings(path)
    msg = str(err.value)
    assert "kafka.partitions" in msg and "greater than or equal to 1" in msg
    assert "LAKEWATCH_KAFKA__PARTITIONS" in msg
    monkeypatch.setenv("LAKEWATCH_KAFKA__SECURITY_PROTOCOL", "TLS")
    with pytest.raises(ConfigError, match=r"kafka.security_protocol.*'PLAINTEXT'"):
        load_settings()


def test_unknown_key_and_bad_toml(tmp_path):
    with pytest.raises(ConfigError, match="kafka.bootstrap_server: unknown config key"):
        load_settings(write(tmp_path, '[kafka]\nbootstrap_server = "x:1"\n'))
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(write(tmp_path, "[kafka\n"))
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "missing.toml")


def test_cli_reports_bad_config_with_exit_2(tmp_path, capsys):
    assert main(["--set", "broker.port=99999", "broker", "status"]) == 2
    assert "broker.port" in capsys.readouterr().err


def test_secrets_never_print(monkeypatch):
    monkeypatch.setenv("LAKEWATCH_KAFKA__SASL_PASSWORD", "hunter2")
    s = load_settings()
    assert "hunter2" not in repr(s) and "hunter2" not in str(s.model_dump())
    assert s.to_env()["LAKEWATCH_KAFKA__SASL_PASSWORD"] == "hunter2"  # children get it via env
    from pipeline.kafka_config import producer_config, redacted

    assert "hunter2" not in str(redacted(producer_config(s)))
