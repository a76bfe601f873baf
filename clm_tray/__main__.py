from clm_tray.cli import main

raise SystemExit(main())
