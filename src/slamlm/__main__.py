from slamlm.cli import main

raise SystemExit(main())
