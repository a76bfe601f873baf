"""The reference prediction backend: the demo workspace's backend and the tests' peer.

It loads the deployed model ONCE, at start (as the trader's backend does), and says which one:
``GET /health`` → 200 ``{"status": "ok", "model_sha256", "model_version", "loaded_at",
"features"}`` or 503 ``{"status": "error", "reason"}`` when no model loads (missing, truncated,
corrupt). ``POST /predict`` with ``{"rows": [{feature: value, ...}, ...]}`` (or a list of
lists in feature order) → ``{"probabilities": [...], "model_version"}``; 400 with a reason on
bad input. So a restart is what makes it pick up a new model, and /health proves it did.

A package that stands on its own: its modules import only the standard library, numpy,
xgboost and each other (relative imports), so ``installer/Dockerfile.backend`` copies this
folder alone into the image. ``model`` loads and predicts, ``ubjson`` tells a whole model file
from a cut one, ``server`` speaks HTTP, ``owner`` stops the demo backend with the app that
started it.

Run: ``python -m clm_tray.core.backend.reference_server --models-dir DIR`` (options: ``--host
127.0.0.1 --port 8000``), or ``clm-tray backend serve``.
"""
