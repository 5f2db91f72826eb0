"""``python -m pipeline.orchestrator``: the original script name of ``lakewatch pipeline``."""

if __name__ == "__main__":
    from pipeline.commands import pipeline as command
    from pipeline.commands.main import run_module

    raise SystemExit(run_module(command, prog="python -m pipeline.orchestrator"))
