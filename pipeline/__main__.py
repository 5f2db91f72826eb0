from pipeline.commands.main import main

raise SystemExit(main())
