"""TEMPORARY re-export while the code moves here from pipeline.self_test."""

from pipeline.self_test import configure_parser, run  # noqa: F401
