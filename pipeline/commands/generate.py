"""TEMPORARY re-export while the code moves here from pipeline.log_generator."""

from pipeline.log_generator import configure_parser, run  # noqa: F401
