from pushserve.cli import main

raise SystemExit(main())
