"""``python -m pipeline.anomaly_detector``: the original script name of ``lakewatch detect``."""

if __name__ == "__main__":
    from pipeline.commands import detect as command
    from pipeline.commands.main import run_module

    raise SystemExit(run_module(command, prog="python -m pipeline.anomaly_detector"))
