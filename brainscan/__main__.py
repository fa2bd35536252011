from brainscan.cli import main

raise SystemExit(main())
