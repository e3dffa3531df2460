from services.site_registry.entrypoints.cli import main

raise SystemExit(main())
