"""The reference backend, served in-process on 127.0.0.1 and spoken to over real HTTP."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
import xgboost

from clm_tray.core.backend import reference_server
from clm_tray.core.backend.reference_server.server import main, make_server
from clm_tray.core.backend.reference_server.ubjson import ubjson_complete


@pytest.fixture
def serve_folder():
    servers = []

    def start(folder):
        server = make_server(folder, "127.0.0.1", 0)
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def test_health_names_the_model_loaded_at_start(tmp_path, write_model, serve_folder):
    deployed = write_model(tmp_path / "models", seed=1)
    base = serve_folder(tmp_path / "models")
    write_model(tmp_path / "models", seed=2)  # replaced on disk: still serves what it loaded
    doc = httpx.get(f"{base}/health").json()
    assert doc["status"] == "ok"
    assert doc["model_sha256"] == deployed.sha256
    assert doc["model_version"] == deployed.version
    assert doc["features"] == ["f0", "f1", "f2"]
    assert doc["loaded_at"].endswith("+00:00")


def test_predict_takes_named_rows_or_lists(tmp_path, write_model, serve_folder):
    deployed = write_model(tmp_path / "models", seed=1)
    base = serve_folder(tmp_path / "models")
    rows = [[0.5, -1.0, 2.0], [-2.0, 0.1, 0.0]]
    booster = xgboost.Booster()
    booster.load_model(str(deployed.path))
    expected = booster.predict(xgboost.DMatrix(np.array(rows, dtype="float32"),
                                               feature_names=["f0", "f1", "f2"]))
    named_rows = [dict(zip(["f0", "f1", "f2"], r, strict=True)) for r in rows]
    named = httpx.post(f"{base}/predict", json={"rows": named_rows})
    listed = httpx.post(f"{base}/predict", json={"rows": rows})
    assert named.status_code == listed.status_code == 200
    assert named.json()["probabilities"] == pytest.approx(expected.tolist(), abs=1e-6)
    assert listed.json()["probabilities"] == named.json()["probabilities"]
    assert named.json()["model_version"] == deployed.version


@pytest.mark.parametrize(("body", "reason"), [
    ({"rows": [{"f0": 1.0}]}, "row 0 lacks feature 'f1' (2 missing)"),
    ({"rows": [[1.0, 2.0]]}, "row 0 has 2 values; the model wants 3"),
    ({"rows": [[1.0, "x", 2.0]]}, "row 0 has a value that is not a number"),
    ({"rows": []}, 'send {"rows": [...]} with at least one row'),
])
def test_bad_predict_input_is_a_400_with_a_reason(tmp_path, write_model, serve_folder, body,
                                                  reason):
    write_model(tmp_path / "models", seed=1)
    base = serve_folder(tmp_path / "models")
    answer = httpx.post(f"{base}/predict", json=body)
    assert answer.status_code == 400
    assert answer.json()["reason"] == reason


def test_truncated_model_is_a_503_with_the_reason(tmp_path, write_model, serve_folder):
    deployed = write_model(tmp_path / "models", seed=1)
    deployed.path.write_bytes(deployed.path.read_bytes()[:200])
    base = serve_folder(tmp_path / "models")
    answer = httpx.get(f"{base}/health")
    assert answer.status_code == 503
    assert answer.json()["status"] == "error"
    assert "but xgb_model.meta.json says" in answer.json()["reason"]
    assert "(truncated or replaced?)" in answer.json()["reason"]
    assert httpx.post(f"{base}/predict", json={"rows": [[1, 2, 3]]}).status_code == 503


def test_truncated_model_without_meta_is_caught_before_xgboost_reads_it(
        tmp_path, write_model, serve_folder):
    deployed = write_model(tmp_path / "models", seed=1)
    (tmp_path / "models" / "xgb_model.meta.json").unlink()
    deployed.path.write_bytes(deployed.path.read_bytes()[:-7])
    base = serve_folder(tmp_path / "models")
    answer = httpx.get(f"{base}/health")
    assert answer.status_code == 503
    assert answer.json()["reason"] == (
        f"cannot load {deployed.path} ({deployed.path.stat().st_size} bytes): "
        "not a complete UBJSON model")


def test_every_cut_of_a_model_is_seen_as_incomplete(tmp_path, write_model):
    data = write_model(tmp_path, seed=3).path.read_bytes()
    assert ubjson_complete(data)
    cuts = [*range(0, len(data), 5), *range(max(0, len(data) - 64), len(data))]
    assert not any(ubjson_complete(data[:n]) for n in cuts)
    assert not ubjson_complete(data + b"\x00")


def test_missing_model_is_a_503(tmp_path, serve_folder):
    base = serve_folder(tmp_path)
    answer = httpx.get(f"{base}/health")
    assert answer.status_code == 503
    assert answer.json()["reason"] == f"no model file {tmp_path / 'xgb_model.ubj'}"


def test_port_taken_is_one_line_and_exit_2(tmp_path, capsys):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        code = main(["--models-dir", str(tmp_path), "--port", str(taken.getsockname()[1])])
    assert code == 2
    assert "choose another --port" in capsys.readouterr().err


def test_the_docker_image_serves_from_the_reference_backend_folder_alone(
        tmp_path, write_model, port):
    """installer/Dockerfile.backend copies one folder and runs it as a module: that folder
    must serve with nothing of clm-tray importable (standard library, numpy, xgboost only)."""
    dockerfile = Path(__file__).resolve().parents[2] / "installer" / "Dockerfile.backend"
    text = dockerfile.read_text(encoding="utf-8")
    source, name = re.search(r"^COPY (\S+?)/? /app/(\w+)/$", text, re.M).groups()
    assert f'"-m", "{name}"' in text and "WORKDIR /app" in text
    folder = Path(reference_server.__file__).parent
    assert folder == dockerfile.parents[1] / source
    deployed = write_model(tmp_path / "models", seed=1)
    app = tmp_path / "app"
    shutil.copytree(folder, app / name, ignore=shutil.ignore_patterns("__pycache__"))
    without_clm_tray = ("import runpy, sys; sys.modules['clm_tray'] = None; "
                        f"runpy.run_module({name!r}, run_name='__main__', alter_sys=True)")
    proc = subprocess.Popen(
        [sys.executable, "-c", without_clm_tray, "--models-dir", str(tmp_path / "models"),
         "--port", str(port)], cwd=app, stderr=subprocess.PIPE)
    try:
        doc = None
        deadline = time.monotonic() + 60
        while doc is None and proc.poll() is None and time.monotonic() < deadline:
            try:
                doc = httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).json()
            except httpx.TransportError:
                time.sleep(0.1)
        assert doc is not None, proc.stderr.read().decode() if proc.poll() is not None else ""
        assert doc["model_sha256"] == deployed.sha256
    finally:
        proc.terminate()
        proc.wait(10)
        proc.stderr.close()
