"""The health panel driving a real pipeline component (the log generator) against the
session's real Kafka broker, through ``pipeline.components.component_argv``."""

from __future__ import annotations

import pytest

from desktop_app.health.controller import PipelineController
from desktop_app.health.panel import HealthPanel


@pytest.mark.slow
def test_real_generator_goes_green_then_off(qtbot, kafka_settings):
    settings = kafka_settings
    settings.generator.rate = 50.0
    controller = PipelineController(settings)
    assert controller.argv_builder is not None
    panel = HealthPanel(settings, controller, poll_ms=250)
    qtbot.addWidget(panel)
    try:
        qtbot.waitUntil(lambda: panel.indicators["broker"].state == "green", timeout=10000)
        assert controller.start("generator") is None
        proc = controller.processes["generator"]
        assert proc.argv[-3:] == ["generate", "--rate", "50"]
        indicator = panel.indicators["generator"]
        qtbot.waitUntil(lambda: indicator.state == "green", timeout=60000)
        assert "events_per_s" in indicator.reason
        controller.stop("generator")
        qtbot.waitUntil(lambda: not proc.is_running(), timeout=20000)
        assert proc.exit_code == 0, proc.exit_reason
        qtbot.waitUntil(lambda: indicator.state == "off", timeout=3000)
    finally:
        panel.shutdown()
