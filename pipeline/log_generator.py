"""``python -m pipeline.log_generator``: the original script name of ``lakewatch generate``."""

if __name__ == "__main__":
    from pipeline.commands import generate as command
    from pipeline.commands.main import run_module

    raise SystemExit(run_module(command, prog="python -m pipeline.log_generator"))
