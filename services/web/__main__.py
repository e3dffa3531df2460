from services.web.entrypoints.cli import main

raise SystemExit(main())
