"""The supervisor of the pipeline's child processes and the headless start/stop/status
built on it.

- ``children``: :class:`Supervisor` and :class:`ChildSpec`: start children in dependency
  order, restart crashes with backoff, stop them cleanly.
- ``processes``: the children's pid and log files; stopping a process tree and its group.
- ``daemon``: the supervisor process of ``lakewatch pipeline``: the components as
  ChildSpecs, the control file it obeys, :func:`supervise` and :func:`run_foreground`.
- ``control``: driving that process from outside: ``start``, ``stop``, ``restart`` and
  ``status``.
"""
