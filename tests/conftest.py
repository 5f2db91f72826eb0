"""Shared fixtures: one real Kafka broker and one real SparkSession for the whole suite.

Tests get their own data dir and their own topic (``settings``), so they never see each
other's tables or messages while sharing the two expensive JVMs.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from pipeline.settings import Settings, load_settings
from tests.helpers.ports import free_port

# No user config or LAKEWATCH_* variable of the developer's may leak into tests.
for _key in [k for k in os.environ if k.startswith("LAKEWATCH_")]:
    del os.environ[_key]
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


@pytest.fixture(scope="session")
def session_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("lakewatch-session")


@pytest.fixture(scope="session")
def base_settings(session_dir: Path) -> Settings:
    """Settings of the session's broker: free ports, data under the session temp dir.

    The jar cache stays the per-user one, filled once by ``lakewatch setup`` (.ci/run).
    """
    return load_settings(
        None,
        {
            "storage.data_dir": str(session_dir / "data"),
            "broker.port": free_port(),
            "broker.controller_port": free_port(),
            "broker.heap_mb": 512,
        },
    )


@pytest.fixture(scope="session")
def broker(base_settings: Settings):
    """A real single-node KRaft broker for the whole session; yields its Settings."""
    from pipeline.broker import EmbeddedBroker

    b = EmbeddedBroker(base_settings)
    b.start()
    try:
        yield base_settings
    finally:
        b.stop()


@pytest.fixture(scope="session")
def spark(base_settings: Settings):
    """The process's one SparkSession (Delta + Kafka connector on the classpath)."""
    from pipeline.spark_session_manager import get_spark, stop_spark

    session = get_spark(base_settings)
    yield session
    stop_spark()


@pytest.fixture
def settings(base_settings: Settings, tmp_path: Path) -> Settings:
    """Per-test settings: own data dir and own topic, same broker ports and jar cache."""
    s = base_settings.model_copy(deep=True)
    s.storage.data_dir = tmp_path / "data"
    s.kafka.topic = f"t-{uuid.uuid4().hex[:12]}"
    return s


@pytest.fixture
def kafka_settings(broker: Settings, settings: Settings) -> Settings:
    """``settings`` with the session broker guaranteed running."""
    return settings


@pytest.fixture(autouse=True)
def _gc_on_gui_thread(request):
    """Qt tests collect garbage the way the app does: on the GUI thread only (see
    desktop_app.gui_gc); the other tests keep Python's automatic collection."""
    if "qtbot" not in request.fixturenames and "qapp" not in request.fixturenames:
        yield
        return
    from desktop_app.gui_gc import collect_on_gui_thread, restore_automatic_gc

    request.getfixturevalue("qapp")
    collect_on_gui_thread()
    yield
    restore_automatic_gc()
