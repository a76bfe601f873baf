"""First run: `clm-tray setup` finds a project laid out like the seed's C:\\quantum_trader."""

from __future__ import annotations

import json
import os
from pathlib import Path

from clm_tray.cli import main
from clm_tray.core.config import firstrun
from clm_tray.core.config.sources import load_settings, user_config_file
from clm_tray.core.ml import rowcount

SEED_ENV = """\
# Quantum Trader
BINANCE_API_KEY=not-a-real-key
# CLM Configuration
QT_CLM_ENABLED=true                    # enabled
QT_CLM_RETRAIN_HOURS=24
QT_CLM_DRIFT_HOURS=6
QT_CLM_PERF_HOURS=3
QT_CLM_DRIFT_THRESHOLD=0.05
QT_CLM_SHADOW_MIN=100
QT_CLM_AUTO_RETRAIN=true
QT_CLM_AUTO_PROMOTE=true
QT_CLM_DOCKER_CONTAINER=quantum_backend_prod
"""


def make_seed_project(root: Path) -> Path:
    (root / "data").mkdir(parents=True)
    header = "timestamp,symbol,open,high,low,close,volume,shortAccount\n"
    rows = "".join(f"2025-12-1{i % 10}T0{i % 10}:00:00Z,BTCUSDT,1,2,0.5,1.5,{i},0.3\n"
                   for i in range(250))
    (root / "data" / "binance_futures_training_data.csv").write_text(header + rows)
    models = root / "ai_engine" / "models"
    (models / "backup_20251211_085558").mkdir(parents=True)
    (models / "backup_20251211_085558" / "xgb_model.pkl").write_bytes(b"old")
    (models / "xgb_model.pkl").write_bytes(b"\x80\x04 not loaded, only listed")
    (models / "retraining_log.txt").write_text(
        "2025-11-20 10:00:01 - Retraining completed successfully\n"
        "2025-12-11 08:55:58 - Retraining completed successfully\n\n")
    (root / ".env").write_text(SEED_ENV)
    return root


def test_detect_project_finds_each_piece_of_the_seed_layout(tmp_path: Path, home: Path) -> None:
    root = make_seed_project(tmp_path / "quantum_trader")

    f = firstrun.detect_project(root)

    assert f.looks_like_project
    assert f.env_file == root / ".env"
    assert f.env_values["QT_CLM_RETRAIN_HOURS"] == "24"
    assert f.env_values["QT_CLM_AUTO_PROMOTE"] == "true"
    assert "BINANCE_API_KEY" not in f.env_values  # only clm-tray's own values are read out
    assert f.data_found and f.data_rows == 250 and f.data_rows_exact
    assert f.data_size == (root / "data" / "binance_futures_training_data.csv").stat().st_size
    assert f.models_found and f.model_files == ["xgb_model.pkl"] and f.backups == 1
    assert f.retraining_log_last == "2025-12-11 08:55:58 - Retraining completed successfully"
    assert (f.container, f.container_source) == ("quantum_backend_prod", ".env")
    assert f.docker.startswith("Docker not reachable") and f.docker_running is None
    text = "\n".join(f.summary_lines())
    for piece in ("250 rows", "xgb_model.pkl", "1 backup", "quantum_backend_prod",
                  "Docker not reachable", "QT_CLM_SHADOW_MIN"):
        assert piece in text


def test_setup_yes_saves_only_the_folder_to_the_user_file(tmp_path: Path, home: Path,
                                                         capsys) -> None:
    root = make_seed_project(tmp_path / "quantum_trader")
    env_before = (root / ".env").read_bytes()

    assert main(["setup", str(root), "--yes"]) == 0

    out = capsys.readouterr().out
    assert "training data:" in out and "Saved QT_CLM_PROJECT_DIR=" in out
    cfg = user_config_file()
    assert cfg == home / "xdg-config" / "clm-tray" / "config.env"
    lines = [ln for ln in cfg.read_text().splitlines() if not ln.startswith("#")]
    assert lines == [f"QT_CLM_PROJECT_DIR={root}"]
    assert (root / ".env").read_bytes() == env_before
    loaded = load_settings(environ={}, cwd=tmp_path)
    assert loaded.settings.project_dir == root
    assert loaded.settings.resolved_data_path == root / "data" / \
        "binance_futures_training_data.csv"
    assert loaded.settings.resolved_deploy_dir == root / "ai_engine" / "models"
    assert not firstrun.is_first_run(loaded, environ={})


def test_setup_without_an_answer_saves_nothing_and_says_how(tmp_path: Path, cli) -> None:
    root = make_seed_project(tmp_path / "quantum_trader")

    r = cli("setup", str(root))  # stdin is /dev/null: nobody to ask

    assert r.returncode == 1, r.stderr
    assert "Not saved" in r.stdout and "--yes" in r.stdout
    assert not user_config_file().exists()


def test_setup_confirmed_on_stdin_saves(tmp_path: Path, cli) -> None:
    root = make_seed_project(tmp_path / "quantum_trader")

    r = cli("setup", str(root), "--json", stdin="y\n")

    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["saved"] is True and out["config_file"] == str(user_config_file())
    assert out["finding"]["models_found"] and out["finding"]["backups"] == 1
    assert f"QT_CLM_PROJECT_DIR={root}" in user_config_file().read_text()


def test_setup_without_folder_finds_the_project_it_runs_in(tmp_path: Path, home: Path,
                                                          capsys) -> None:
    root = make_seed_project(tmp_path / "quantum_trader")
    os.chdir(root)
    assert main(["setup", "--yes", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["finding"]["folder"] == str(root) and out["saved"]


def test_setup_with_nothing_to_find_points_at_the_demo(home: Path, capsys) -> None:
    assert main(["setup", "--yes"]) == 1
    out = capsys.readouterr().out
    assert "No project folder found" in out and "clm-tray demo" in out
    assert not user_config_file().exists()


def test_setup_refuses_a_folder_that_is_not_a_project(tmp_path: Path, home: Path,
                                                     capsys) -> None:
    (tmp_path / "empty").mkdir()
    assert main(["setup", str(tmp_path / "empty"), "--yes"]) == 1
    assert "does not look like a project folder" in capsys.readouterr().out
    assert not user_config_file().exists()


def test_first_run_is_no_user_file_no_env_and_no_variables(tmp_path: Path, home: Path) -> None:
    assert firstrun.is_first_run(load_settings(environ={}, cwd=tmp_path), environ={})
    assert not firstrun.is_first_run(load_settings(environ={}, cwd=tmp_path),
                                     environ={"QT_CLM_ENABLED": "true"})
    root = make_seed_project(tmp_path / "p")
    assert not firstrun.is_first_run(load_settings(environ={}, cwd=root), environ={})


def test_large_csv_rows_are_estimated_from_the_first_megabyte(tmp_path: Path) -> None:
    path = tmp_path / "big.csv"
    line = b"2025-12-11T08:00:00Z,BTCUSDT," + b"0.123456," * 20 + b"1\n"
    n = rowcount.EXACT_COUNT_BYTES // len(line) + 5000
    path.write_bytes(b"timestamp,symbol," + b"f," * 20 + b"target\n" + line * n)
    rows, exact = rowcount.count_rows(path)
    assert not exact and abs(rows - n) <= n * 0.01


def test_after_setup_the_projects_env_applies_from_any_folder(tmp_path: Path, home: Path) -> None:
    root = make_seed_project(tmp_path / "quantum_trader")
    (root / ".env").write_text(SEED_ENV + "QT_CLM_SHADOW_MIN=250\n")
    firstrun.save(firstrun.detect_project(root, check_docker=False))

    loaded = load_settings(environ={}, cwd=home)  # the tray started at login: cwd is HOME

    assert loaded.env_file == root / ".env"
    assert loaded.settings.shadow_min == 250
