"""The one typed settings object of Lakewatch.

Precedence, lowest first: defaults < TOML file < ``LAKEWATCH_*`` environment < command line.
The file is ``--config PATH``, else ``$LAKEWATCH_CONFIG``, else ``lakewatch.toml`` in the user
config dir (absent is fine: the defaults work on a fresh machine). Nested keys map to
environment variables with a double underscore: ``kafka.bootstrap_servers`` is
``LAKEWATCH_KAFKA__BOOTSTRAP_SERVERS``. Every other module receives a ``Settings`` instance;
nothing else reads the environment or a config file.
"""

from __future__ import annotations

import os
import re
import sys
import tomllib
from pathlib import Path
from typing import Any, Literal

import platformdirs
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

APP_NAME = "lakewatch"
ENV_PREFIX = "LAKEWATCH_"
CONFIG_ENV = "LAKEWATCH_CONFIG"
#: Folder inside the PyInstaller bundle laid out like the per-user cache (``jars/<group>/``).
BUNDLED_CACHE = "lakewatch-cache"


def default_cache_dir(bundle_root: Path | None = None) -> Path:
    """Where ``storage.cache_dir`` points when no config sets it.

    In the PyInstaller bundle that is the jar cache it carries (its first start needs no
    network); a ``storage.cache_dir`` from any config source still wins. Elsewhere it is
    the per-user cache dir.
    """
    if bundle_root is None and getattr(sys, "frozen", False):
        bundle_root = Path(getattr(sys, "_MEIPASS", ""))
    if bundle_root is not None and (bundle_root / BUNDLED_CACHE / "jars").is_dir():
        return bundle_root / BUNDLED_CACHE
    return Path(platformdirs.user_cache_dir(APP_NAME))


class ConfigError(ValueError):
    """A config value is invalid; the message names the key and what is allowed."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class KafkaSettings(_Section):
    """Where the logs live. ``bootstrap_servers`` set means attach mode: no embedded broker."""

    bootstrap_servers: str | None = None
    topic: str = Field("web-logs", min_length=1, max_length=249, pattern=r"^[A-Za-z0-9._-]+$")
    partitions: int = Field(3, ge=1, le=1000)
    retention_ms: int = Field(7 * 24 * 3600 * 1000, ge=-1)
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_ca_location: Path | None = None
    ssl_certificate_location: Path | None = None
    ssl_key_location: Path | None = None
    ssl_key_password: SecretStr | None = None
    consumer_group: str = "lakewatch"


class BrokerSettings(_Section):
    """The embedded single-node KRaft broker (ignored in attach mode)."""

    host: str = "127.0.0.1"
    port: int = Field(19092, ge=1, le=65535)
    controller_port: int = Field(19093, ge=1, le=65535)
    heap_mb: int = Field(512, ge=128, le=65536)
    ready_timeout_s: float = Field(90.0, gt=0)
    stop_timeout_s: float = Field(20.0, gt=0)


class SparkSettings(_Section):
    master: str = "local[*]"
    shuffle_partitions: int | None = Field(None, ge=1, description="None: 2 x cores")
    driver_memory: str = Field("2g", pattern=r"^\d+[kmgt]?$")
    ui_enabled: bool = False
    ui_port: int = Field(4040, ge=1, le=65535)
    log_level: Literal["ALL", "DEBUG", "INFO", "WARN", "ERROR", "FATAL", "OFF"] = "WARN"
    extra_conf: dict[str, str] = Field(default_factory=dict)

    @field_validator("master")
    @classmethod
    def _known_master(cls, value: str) -> str:
        if not (value.startswith(("local", "spark://", "yarn", "k8s://"))):
            raise ValueError("must be local[...], spark://host:port, yarn or k8s://...")
        return value


class StorageSettings(_Section):
    """Where Lakewatch keeps its data; None means the per-user platform directory."""

    data_dir: Path | None = None
    cache_dir: Path | None = None


class GeneratorSettings(_Section):
    """The synthetic log generator (``lakewatch generate``) and the file shipper."""

    rate: float = Field(1000.0, gt=0)
    seed: int | None = None
    speedup: float = Field(1.0, gt=0)
    sources: int = Field(6, ge=1, le=1000)
    #: anomaly schedule: a JSON file, inline JSON, or "random"; None: no scheduled anomalies
    scenarios: str | None = None
    #: ground-truth labels file; None: <data_dir>/labels/generator_labels.jsonl
    labels: Path | None = None


class SourcesSettings(_Section):
    """How ``lakewatch ship`` reads the files it follows."""

    #: preset name (``lakewatch ship --list-formats``) or an nginx ``log_format`` / Apache
    #: ``LogFormat`` / W3C ``#Fields:`` string; None: ``--format`` (default combined)
    log_format: str | None = None

    @field_validator("log_format")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            from pipeline.log_formats import compile_format

            compile_format(value)  # ValueError names what is wrong
        return value


_INTERVAL = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|milliseconds?|s|secs?|seconds?|m|mins?|"
                       r"minutes?|h|hours?)\s*$", re.IGNORECASE)
_UNIT_S = {"ms": 0.001, "mi": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def interval_seconds(text: str) -> float:
    """``"30 seconds"`` / ``"2 min"`` / ``"500 ms"`` -> seconds; ValueError otherwise."""
    match = _INTERVAL.match(text)
    if not match:
        raise ValueError(f"not a duration: {text!r} (say e.g. '30 seconds' or '1 minute')")
    unit = match.group(2).lower()
    key = "mi" if unit.startswith("milli") else unit[:2] if unit == "ms" else unit[0]
    return float(match.group(1)) * _UNIT_S[key]


class ProcessorSettings(_Section):
    trigger_interval: str = Field("2 seconds", min_length=1)
    max_offsets_per_trigger: int = Field(200_000, ge=1)
    #: event-time lateness allowed before a metrics window is final (and repeats forgotten)
    watermark: str = Field("30 seconds", min_length=1)
    fold_every_s: float = Field(
        300.0, gt=0, description="stream mode: rewrite final windows' metrics partials as one "
                                 "row per window every N s")
    delta_checkpoint_every: int = Field(
        25, ge=1, description="stream mode: checkpoint each Delta table beside the stream once "
                              "it is N commits past its last checkpoint (never inside a batch)")
    max_message_bytes: int = Field(1_000_000, ge=1024)
    max_clock_skew_s: int = Field(7 * 24 * 3600, ge=1)
    starting_offsets: Literal["earliest", "latest"] = "earliest"
    fail_on_data_loss: bool = True
    max_future_skew_s: int = Field(3600, ge=1, description="events this far ahead: quarantined")
    optimize_every_s: float | None = Field(
        None, gt=0, description="stream mode: OPTIMIZE+VACUUM in the writer every N s; None: never"
    )
    vacuum_retention_hours: float = Field(168.0, ge=0)
    compact_every_s: float | None = Field(
        60.0, gt=0, description="stream mode: compact the recent partitions' small files of logs "
                                "and logs_quarantine in the writer every N s, beside the "
                                "stream (bin-packing OPTIMIZE, no VACUUM); None: never")
    compact_days: int = Field(
        2, ge=1, description="compaction covers the date partitions of the last N days (UTC)")
    compact_min_file_mb: int = Field(
        32, ge=1, description="compaction rewrites files smaller than this; bigger ones stay, "
                              "so a day's compacted files are not rewritten every round")
    compact_max_file_mb: int = Field(
        128, ge=1, description="compaction writes files of at most this size")
    status_interval_s: float = Field(2.0, gt=0)
    #: the dedup state's store (read when a checkpoint is created; Spark keeps an existing
    #: checkpoint's own): "rocksdb" with changelog checkpointing, or Spark's default
    #: in-memory HDFS-backed store (bench/floor.py --state-store measures both)
    state_store: Literal["hdfs", "rocksdb"] = "hdfs"

    @field_validator("watermark", "trigger_interval")
    @classmethod
    def _duration(cls, value: str) -> str:
        interval_seconds(value)
        return value

    @property
    def watermark_s(self) -> float:
        return interval_seconds(self.watermark)


class DetectorSettings(_Section):
    """Anomaly detector (pipeline.detection): robust baseline + IsolationForest + log patterns."""

    window: Literal["10 seconds", "1 minute"] = "10 seconds"
    retrain_every_s: int = Field(3600, ge=10)
    poll_interval_s: float = Field(5.0, gt=0)
    threshold: float = Field(6.0, gt=0, description="robust |z| that flags a feature")
    in_processor: bool = True
    baseline_windows: int = Field(90, ge=6, description="trailing windows in the baseline")
    min_history_windows: int = Field(12, ge=3, description="windows before an entity is scored")
    min_requests: int = Field(20, ge=1, description="requests a window needs for rate features")
    max_excluded_windows: int = Field(
        360, ge=1, description="anomalous windows kept out of a baseline before a level shift "
        "is accepted as the new normal")
    iforest_trees: int = Field(100, ge=10, le=2000)
    iforest_min_train_rows: int = Field(200, ge=20)
    pattern_min_count: int = Field(5, ge=1, description="new template count that is flagged")
    history_hours: float = Field(2.0, gt=0, description="metrics loaded to warm up on start")


class OrchestratorSettings(_Section):
    """How ``lakewatch pipeline`` supervises its child processes."""

    generator: bool = Field(True, description="start the log generator with the pipeline")
    stop_timeout_s: float = Field(30.0, gt=0, description="SIGTERM grace before SIGKILL")
    backoff_initial_s: float = Field(1.0, gt=0, description="first restart delay after a crash")
    backoff_max_s: float = Field(60.0, gt=0)
    healthy_after_s: float = Field(60.0, gt=0, description="uptime that resets the backoff")


class AppSettings(_Section):
    buffer_rows: int = Field(1_000_000, ge=1000, le=50_000_000)
    theme: Literal["dark", "light"] = "dark"
    keep_pipeline_running: bool = False
    refresh_ms: int = Field(1000, ge=50)
    max_cell_chars: int = Field(512, ge=16)
    #: Live log stream: raw event bytes kept at most (MiB); with buffer_rows it bounds memory.
    buffer_mb: int = Field(448, ge=16, le=65536)
    #: Live log stream: where tailing starts (the end of the topic, or its beginning).
    live_start: Literal["latest", "earliest"] = "latest"


class SqlSettings(_Section):
    time_limit_s: float = Field(300.0, gt=0)
    row_cap: int = Field(1_000_000, ge=1)
    allow_writes: bool = False
    #: The stream processor serves read-only SQL over Spark Connect (loopback, token, guarded)
    #: and the app and ``lakewatch sql`` use it instead of starting their own Spark.
    connect: bool = True
    #: How long a client waits for the processor's endpoint to answer before using its own
    #: session. Long on purpose: a refused or broken endpoint falls back at once, a live but
    #: busy processor answers late, and a second JVM started beside it on a loaded laptop
    #: costs more (25+ s, 2 GB) than the wait (bench/sql_live.py saw 20 s answers under load).
    connect_timeout_s: float = Field(60.0, gt=0)
    #: Exact rewrites of the app's own query shapes on ``logs`` (latest N rows, time-bounded
    #: filters) that prune partitions and skip files (:mod:`pipeline.sql.fast_paths`).
    fast_paths: bool = True


class Settings(BaseSettings):
    """Every knob of Lakewatch, grouped by component."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        extra="forbid",
        validate_assignment=True,
    )

    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    broker: BrokerSettings = Field(default_factory=BrokerSettings)
    spark: SparkSettings = Field(default_factory=SparkSettings)
    storage: StorageSettings = Field(default_factory=StorageSettings)
    generator: GeneratorSettings = Field(default_factory=GeneratorSettings)
    sources: SourcesSettings = Field(default_factory=SourcesSettings)
    processor: ProcessorSettings = Field(default_factory=ProcessorSettings)
    detector: DetectorSettings = Field(default_factory=DetectorSettings)
    orchestrator: OrchestratorSettings = Field(default_factory=OrchestratorSettings)
    app: AppSettings = Field(default_factory=AppSettings)
    sql: SqlSettings = Field(default_factory=SqlSettings)

    # Set by load_settings; not a config key.
    config_file: Path | None = Field(None, exclude=True)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _TomlSource(settings_cls))

    # -- derived locations -------------------------------------------------------------
    @property
    def attached(self) -> bool:
        """True when Kafka is an external cluster and no embedded broker runs."""
        return bool(self.kafka.bootstrap_servers)

    @property
    def bootstrap_servers(self) -> str:
        return self.kafka.bootstrap_servers or f"{self.broker.host}:{self.broker.port}"

    @property
    def data_dir(self) -> Path:
        return Path(self.storage.data_dir or platformdirs.user_data_dir(APP_NAME)).expanduser()

    @property
    def cache_dir(self) -> Path:
        return Path(self.storage.cache_dir or default_cache_dir()).expanduser()

    @property
    def jars_dir(self) -> Path:
        return self.cache_dir / "jars"

    @property
    def delta_dir(self) -> Path:
        return self.data_dir / "delta"

    @property
    def checkpoint_dir(self) -> Path:
        return self.data_dir / "checkpoints"

    @property
    def run_dir(self) -> Path:
        """Pid files, heartbeats and component logs."""
        return self.data_dir / "run"

    @property
    def broker_dir(self) -> Path:
        return self.data_dir / "kafka"

    def table_path(self, name: str) -> Path:
        return self.delta_dir / name

    def to_env(self) -> dict[str, str]:
        """Non-default values as LAKEWATCH_* variables, so child processes see this config.

        Secrets are included (children need them) and must only ever travel through the
        environment, never through argv.
        """
        env: dict[str, str] = {}
        if self.config_file is not None:
            env[CONFIG_ENV] = str(self.config_file)
        data = self.model_dump(mode="json", exclude_defaults=True, exclude={"config_file"})
        for section, values in data.items():
            for key, value in values.items():
                if isinstance(value, dict):
                    value = _json_dumps(value)
                elif isinstance(value, bool):
                    value = "true" if value else "false"
                env[f"{ENV_PREFIX}{section.upper()}__{key.upper()}"] = str(value)
        for section in ("kafka",):
            model = getattr(self, section)
            for key in ("sasl_password", "ssl_key_password"):
                secret = getattr(model, key)
                if secret is not None:
                    env[f"{ENV_PREFIX}{section.upper()}__{key.upper()}"] = (
                        secret.get_secret_value()
                    )
        return env


def _json_dumps(value: Any) -> str:
    import json

    return json.dumps(value)


class _TomlSource(PydanticBaseSettingsSource):
    """Reads the TOML file chosen by load_settings (or none)."""

    path: Path | None = None

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        path = _TomlSource.path
        if path is None:
            return {}
        try:
            with path.open("rb") as fh:
                return tomllib.load(fh)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}") from exc


def default_config_path() -> Path:
    return Path(platformdirs.user_config_dir(APP_NAME)) / "lakewatch.toml"


def resolve_config_path(config_path: str | os.PathLike[str] | None = None) -> Path | None:
    """The config file to read: explicit path, then $LAKEWATCH_CONFIG, then the default."""
    if config_path:
        path = Path(config_path).expanduser()
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist")
        return path
    env_path = os.environ.get(CONFIG_ENV)
    if env_path:
        path = Path(env_path).expanduser()
        if not path.is_file():
            raise ConfigError(f"{CONFIG_ENV}={env_path}: no such file")
        return path
    default = default_config_path()
    return default if default.is_file() else None


def load_settings(
    config_path: str | os.PathLike[str] | None = None,
    overrides: dict[str, Any] | None = None,
) -> Settings:
    """Build the Settings from every source; raise ConfigError naming the bad key.

    ``overrides`` are command-line values as nested dicts (``{"kafka": {"topic": "t"}}``) or
    dotted keys (``{"kafka.topic": "t"}``); they win over everything else.
    """
    path = resolve_config_path(config_path)
    init = _nest(overrides or {})
    _TomlSource.path = path
    try:
        settings = Settings(**init)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, path)) from None
    finally:
        _TomlSource.path = None
    settings.config_file = path
    return settings


def _nest(flat: dict[str, Any]) -> dict[str, Any]:
    nested: dict[str, Any] = {}
    for key, value in flat.items():
        if value is None:
            continue
        if isinstance(value, dict):
            nested.setdefault(key, {}).update(value)
            continue
        section, _, name = key.partition(".")
        if not name:
            nested[key] = value
        else:
            nested.setdefault(section, {})[name] = value
    return nested


def _describe(exc: ValidationError, path: Path | None) -> str:
    lines = []
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"])
        env = ENV_PREFIX + "__".join(str(p).upper() for p in err["loc"])
        got = err.get("input")
        if err["type"] == "extra_forbidden":
            lines.append(f"{key}: unknown config key")
            continue
        shown = "<secret>" if "password" in key else repr(got)
        lines.append(f"{key} = {shown}: {err['msg']} (config key {key!r} or env {env})")
    where = f" in {path}" if path else ""
    return f"invalid configuration{where}:\n  " + "\n  ".join(lines)
