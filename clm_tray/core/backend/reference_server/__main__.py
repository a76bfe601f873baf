"""``python -m clm_tray.core.backend.reference_server`` (in the image: ``python -m
reference_server``) runs the reference backend."""

import sys

from .server import main

sys.exit(main())
