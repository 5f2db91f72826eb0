"""TEMPORARY re-export while the code moves here from pipeline.shipper."""

from pipeline.shipper import configure_parser, run  # noqa: F401
