"""A stand-in for the seed's ``quantum_backend_prod``: it unpickles ``xgb_model.pkl`` at start
and answers ``/health`` with ``{"status": "ok"}`` only — nothing about which model it loaded —
plus, for the tests alone, ``test_loaded_sha256``: the sha256 of the pickle it loaded.

    python pickle_backend.py MODELS_DIR PORT [--refuse-unless SHA256]

``--refuse-unless`` makes the backend that cannot run a new model: it exits at start when the
pickle is not the one named (the sha is checked before anything heavy is imported).
"""

from __future__ import annotations

import hashlib
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


def main(argv: list[str]) -> int:
    models, port = Path(argv[0]), int(argv[1])
    data = (models / "xgb_model.pkl").read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    if len(argv) > 3 and argv[2] == "--refuse-unless" and sha != argv[3]:
        print(f"refusing xgb_model.pkl {sha[:12]}: not the model this backend runs", flush=True)
        return 3
    import pickle

    import numpy as np

    model = pickle.loads(data)  # what the seed's backend does; clm-tray itself never does
    model.predict_proba(np.zeros((1, model.n_features_in_)))  # usable, not just unpicklable
    body = json.dumps({"status": "ok", "test_loaded_sha256": sha}).encode()

    class Health(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            self.send_response(200 if self.path == "/health" else 404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass

    print(f"serving xgb_model.pkl {sha[:12]} on port {port}", flush=True)
    ThreadingHTTPServer(("127.0.0.1", port), Health).serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
