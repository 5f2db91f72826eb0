"""TEMPORARY re-export while the code moves here from pipeline.anomaly_detector."""

from pipeline.anomaly_detector import configure_parser, run  # noqa: F401
