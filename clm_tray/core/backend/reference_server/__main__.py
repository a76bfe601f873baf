"""``python -m clm_tray.core.backend.reference_server`` (in the image: ``python -m
reference_server``) runs the reference backend."""

import sys

from .server import main

if __name__ == "__main__":  # importing this module (walking the package) must not serve
    sys.exit(main())
