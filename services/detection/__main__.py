from services.detection.entrypoints.cli import main

raise SystemExit(main())
