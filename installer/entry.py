"""The frozen app's entry point: the same `clm-tray` command as the console script.

``freeze_support`` must run first: training runs in a spawned child process, and in a frozen
app the child is this executable started again with multiprocessing's arguments.
"""

import multiprocessing

if __name__ == "__main__":
    multiprocessing.freeze_support()
    from clm_tray.cli import main

    raise SystemExit(main())
