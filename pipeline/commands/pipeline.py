"""TEMPORARY re-export while the code moves here from pipeline.orchestrator."""

from pipeline.orchestrator import configure_parser, run  # noqa: F401
