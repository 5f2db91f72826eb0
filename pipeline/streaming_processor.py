"""``python -m pipeline.streaming_processor``: the original script name of ``lakewatch process``."""

if __name__ == "__main__":
    from pipeline.commands import process as command
    from pipeline.commands.main import run_module

    raise SystemExit(run_module(command, prog="python -m pipeline.streaming_processor"))
