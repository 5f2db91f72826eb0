"""The pipeline's components and the one place that builds their command lines.

Every child process of ``lakewatch pipeline`` (and of the desktop app, which starts the same
components) gets its argv from :func:`component_argv` and its environment from
:func:`child_env`. The argv carries only the subcommand:
configuration, secrets included, reaches the child through ``Settings.to_env()``, because a
command line is visible to every user of the machine (``ps``).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass

from pipeline.settings import Settings

BROKER = "broker"
PROCESSOR = "processor"
DETECTOR = "detector"
GENERATOR = "generator"

#: Start order; stop runs in reverse.
ORDER: tuple[str, ...] = (BROKER, PROCESSOR, DETECTOR, GENERATOR)


@dataclass(frozen=True)
class Component:
    name: str
    help: str
    #: components that must be up before this one starts (and that stop after it)
    needs: tuple[str, ...] = ()


COMPONENTS: dict[str, Component] = {
    BROKER: Component(BROKER, "embedded Kafka broker (not in attach mode)"),
    PROCESSOR: Component(PROCESSOR, "Spark streaming: Kafka -> Delta", needs=(BROKER,)),
    DETECTOR: Component(DETECTOR, "anomaly detector (own process)", needs=(BROKER, PROCESSOR)),
    GENERATOR: Component(GENERATOR, "synthetic web-log generator", needs=(BROKER,)),
}


def is_frozen() -> bool:
    """True inside a PyInstaller bundle, where ``sys.executable`` is the app itself."""
    return bool(getattr(sys, "frozen", False))


def lakewatch_argv(*args: str, frozen: bool | None = None) -> list[str]:
    """``lakewatch <args>`` as an argv that works both from source and from the bundle."""
    frozen = is_frozen() if frozen is None else frozen
    prefix = [sys.executable] if frozen else [sys.executable, "-m", "pipeline"]
    return [*prefix, *args]


def component_args(component: str, settings: Settings) -> list[str]:
    """The subcommand part of a component's argv (no interpreter, no config values)."""
    if component == BROKER:
        return ["broker", "run"]
    if component == PROCESSOR:
        args = ["process", "--mode", "stream"]
        if settings.detector.in_processor:
            args.append("--with-detector")
        return args
    if component == DETECTOR:
        return ["detect", "--mode", "stream"]
    if component == GENERATOR:
        return ["generate", "--rate", _number(settings.generator.rate)]
    raise ValueError(f"unknown component {component!r}; known: {', '.join(ORDER)}")


def component_argv(component: str, settings: Settings, *, frozen: bool | None = None) -> list[str]:
    """The exact argv that starts ``component`` as a child process."""
    return lakewatch_argv(*component_args(component, settings), frozen=frozen)


def supervisor_argv(*, frozen: bool | None = None) -> list[str]:
    """The argv of the detached supervisor that ``lakewatch pipeline start`` leaves running."""
    return lakewatch_argv("pipeline", "supervise", frozen=frozen)


def child_env(settings: Settings) -> dict[str, str]:
    """This process's environment minus any LAKEWATCH_* of its own, plus ``settings``' config.

    Dropping inherited LAKEWATCH_* variables matters: a value overridden on our command line
    back to its default would otherwise reach the child from the old variable.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("LAKEWATCH_")}
    env.update(settings.to_env())
    env["PYTHONUNBUFFERED"] = "1"
    return env


def default_components(settings: Settings) -> list[str]:
    """What ``lakewatch pipeline start`` runs for this configuration, in start order."""
    wanted = {PROCESSOR}
    if not settings.attached:
        wanted.add(BROKER)
    if not settings.detector.in_processor:
        wanted.add(DETECTOR)
    if settings.orchestrator.generator:
        wanted.add(GENERATOR)
    return [name for name in ORDER if name in wanted]


def resolve(names: list[str] | tuple[str, ...], settings: Settings) -> list[str]:
    """``names`` plus what they need, in start order; ConfigError-style ValueError if unknown.

    The broker is dropped in attach mode, and the detector when it runs inside the processor.
    """
    wanted: set[str] = set()
    for name in names:
        if name not in COMPONENTS:
            raise ValueError(f"unknown component {name!r}; known: {', '.join(ORDER)}")
        wanted.add(name)
        wanted.update(COMPONENTS[name].needs)
    if settings.attached:
        wanted.discard(BROKER)
    if settings.detector.in_processor:
        wanted.discard(DETECTOR)
    return [name for name in ORDER if name in wanted]


def dependents(names: list[str] | tuple[str, ...]) -> list[str]:
    """``names`` plus every component that needs one of them, in start order."""
    out = set(names)
    changed = True
    while changed:
        changed = False
        for comp in COMPONENTS.values():
            if comp.name not in out and out.intersection(comp.needs):
                out.add(comp.name)
                changed = True
    return [name for name in ORDER if name in out]


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))
