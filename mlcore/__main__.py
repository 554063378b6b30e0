from mlcore.cli import main

raise SystemExit(main())
