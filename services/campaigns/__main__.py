from services.campaigns.entrypoints.cli import main

raise SystemExit(main())
