from services.funding.entrypoints.cli import main

raise SystemExit(main())
