from smsgw.cli import main

raise SystemExit(main())
