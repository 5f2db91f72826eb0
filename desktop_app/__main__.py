"""``python -m desktop_app``: same as the ``lakewatch`` console script."""

from desktop_app.cli import main

raise SystemExit(main())
