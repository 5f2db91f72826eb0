"""Settings dialog: pydantic validation naming the key, persistence to TOML, the entry point."""

from __future__ import annotations

import tomllib

import pytest

from desktop_app import config_file
from desktop_app.settings_dialog import SettingsDialog, validate_changes
from pipeline.settings import load_settings


@pytest.fixture
def config_path(tmp_path):
    path = tmp_path / "lakewatch.toml"
    path.write_text('[generator]\nrate = 50.0\n\n[kafka]\ntopic = "old-topic"\n')
    return path


def test_invalid_value_is_rejected_naming_the_key(qtbot, settings, config_path):
    before = config_path.read_text()
    dialog = SettingsDialog(settings, config_path)
    qtbot.addWidget(dialog)
    dialog.set_value("kafka.topic", "bad topic!")
    dialog.accept()
    assert dialog.result_settings is None
    assert dialog.error.text().startswith("kafka.topic: String should match pattern")
    assert config_path.read_text() == before  # nothing written

    dialog.set_value("kafka.topic", "good-topic")
    dialog.set_value("app.buffer_rows", "12")
    dialog.accept()
    assert dialog.error.text().startswith("app.buffer_rows: Input should be greater than")
    dialog.set_value("app.buffer_rows", "lots")
    dialog.accept()
    assert dialog.error.text().startswith("app.buffer_rows: Input should be a valid integer")
    dialog.set_value("spark.master", "mesos://x")
    dialog.set_value("app.buffer_rows", "5000")
    dialog.accept()
    assert dialog.error.text().startswith("spark.master: Value error, must be local")
    assert config_path.read_text() == before


def test_valid_values_are_saved_and_reload(qtbot, settings, config_path, tmp_path):
    dialog = SettingsDialog(settings, config_path)
    qtbot.addWidget(dialog)
    dialog.set_value("kafka.topic", "new-topic")
    dialog.set_value("kafka.bootstrap_servers", "kafka-1:9092,kafka-2:9092")
    dialog.set_value("kafka.security_protocol", "SASL_SSL")
    dialog.set_value("kafka.sasl_mechanism", "SCRAM-SHA-512")
    dialog.set_value("kafka.sasl_username", "alice")
    dialog.set_value("kafka.sasl_password", "s3cret")
    dialog.set_value("app.buffer_rows", "250000")
    dialog.set_value("app.theme", "light")
    dialog.set_value("storage.data_dir", str(tmp_path / "data here"))
    dialog.accept()
    assert dialog.error.text() == ""
    new = dialog.result_settings
    assert new.kafka.topic == "new-topic" and new.attached
    assert new.kafka.sasl_password.get_secret_value() == "s3cret"
    text = config_path.read_text()
    assert "s3cret" not in text  # secrets never go to the file
    data = tomllib.loads(text)
    assert data["generator"] == {"rate": 50.0}  # untouched keys kept
    assert data["kafka"]["topic"] == "new-topic"
    assert "spark" not in data  # unchanged sections are not written
    reloaded = load_settings(config_path)
    assert reloaded.kafka.bootstrap_servers == "kafka-1:9092,kafka-2:9092"
    assert reloaded.kafka.security_protocol == "SASL_SSL"
    assert reloaded.kafka.sasl_mechanism == "SCRAM-SHA-512"
    assert reloaded.app.buffer_rows == 250000
    assert reloaded.app.theme == "light"
    assert reloaded.data_dir == tmp_path / "data here"
    assert reloaded.generator.rate == 50.0


def test_clearing_bootstrap_servers_removes_the_key(settings, tmp_path):
    path = tmp_path / "c.toml"
    config_file.update_config_file(path, {"kafka": {"bootstrap_servers": "h:1"}})
    config_file.update_config_file(path, {"kafka": {"bootstrap_servers": None}})
    assert tomllib.loads(path.read_text()) == {}


def test_toml_writer_round_trips():
    data = {"a": {"s": 'quote " back\\slash\nnewline ü', "i": 3, "f": 0.5, "b": True,
                  "d": {"spark.x": "1"}, "l": [1, 2]}}
    assert tomllib.loads(config_file.dumps(data)) == data


def test_validate_changes_reports_only_differences(settings):
    new, changed = validate_changes(settings, {"kafka.topic": settings.kafka.topic,
                                               "app.refresh_ms": 2000})
    assert changed == {"app": {"refresh_ms": 2000}}
    assert new.app.refresh_ms == 2000 and settings.app.refresh_ms == 1000


def test_cli_dispatches_subcommands_without_a_window(capsys, tmp_path):
    from desktop_app.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.startswith("lakewatch ")
    code = main(["--set", f"storage.data_dir={tmp_path}", "pipeline", "status"])
    assert code in (0, 1, 3)  # nothing runs: a status exit code, never the GUI
    assert "broker" in capsys.readouterr().out


def test_cli_bad_config_is_a_clear_error(capsys):
    from desktop_app.cli import main

    assert main(["--set", "kafka.topic=bad topic"]) == 2
    assert "kafka.topic" in capsys.readouterr().err
