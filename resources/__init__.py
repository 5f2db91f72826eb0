"""Lakewatch's icons and Qt style sheets, installed as the package ``lakewatch_resources``.

The folder stays at the top of the repository; ``pyproject.toml`` maps the package onto it
(``package-dir``) and lists its files as package data. Read them through
``desktop_app.resources``, which also knows the PyInstaller bundle's copy.
"""
