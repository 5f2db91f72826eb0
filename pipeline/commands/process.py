"""TEMPORARY re-export while the code moves here from pipeline.streaming_processor."""

from pipeline.streaming_processor import configure_parser, run  # noqa: F401
