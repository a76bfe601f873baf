"""Configuration: precedence, the seed's names and defaults, and one-line errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from clm_tray.core.config.sources import load_settings, user_config_file, write_user_settings
from clm_tray.core.errors import ConfigError


def _load(tmp_path: Path, env: dict[str, str] | None = None, **kw):
    return load_settings(environ=env or {}, cwd=tmp_path, user_file=tmp_path / "user.env", **kw)


def test_defaults_are_the_seeds(tmp_path):
    s = _load(tmp_path).settings
    assert (s.enabled, s.retrain_hours, s.drift_hours, s.perf_hours) == (True, 24, 6, 3)
    assert (s.drift_threshold, s.shadow_min, s.auto_retrain, s.auto_promote) == (
        0.05, 100, True, True)
    assert (s.check_minutes, s.train_timeout, s.backup_keep, s.model_file) == (
        30, 600, 10, "xgb_model.ubj")


def test_precedence_env_over_dotenv_over_user_file_over_default(tmp_path):
    (tmp_path / "user.env").write_text("QT_CLM_RETRAIN_HOURS=5\nQT_CLM_DRIFT_HOURS=4\n"
                                       "QT_CLM_PERF_HOURS=2\n")
    (tmp_path / ".env").write_text("QT_CLM_RETRAIN_HOURS=6\nQT_CLM_DRIFT_HOURS=7\n")
    loaded = _load(tmp_path, {"QT_CLM_RETRAIN_HOURS": "8"})
    s = loaded.settings
    assert (s.retrain_hours, s.drift_hours, s.perf_hours, s.check_minutes) == (8, 7, 2, 30)
    assert loaded.sources["retrain_hours"] == "environment"
    assert loaded.sources["drift_hours"] == str(tmp_path / ".env")
    assert loaded.sources["perf_hours"] == str(tmp_path / "user.env")
    assert loaded.sources["check_minutes"] == "default"


def test_env_file_flag_wins_over_the_working_directory(tmp_path):
    (tmp_path / ".env").write_text("QT_CLM_SHADOW_MIN=5\n")
    other = tmp_path / "other.env"
    other.write_text("QT_CLM_SHADOW_MIN=7\n")
    assert _load(tmp_path, env_file=other).settings.shadow_min == 7


def test_project_dir_brings_its_env_and_the_existing_layout(tmp_path):
    project = tmp_path / "quantum_trader"
    project.mkdir()
    (project / ".env").write_text("QT_CLM_RETRAIN_HOURS=12\n")
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    loaded = load_settings(environ={"QT_CLM_PROJECT_DIR": str(project)}, cwd=elsewhere,
                           user_file=tmp_path / "none.env")
    s = loaded.settings
    assert s.retrain_hours == 12
    assert s.resolved_data_path == project / "data" / "binance_futures_training_data.csv"
    assert s.resolved_deploy_dir == project / "ai_engine" / "models"
    assert s.resolved_backend == "docker"


def test_relative_paths_in_a_dotenv_are_relative_to_its_folder(tmp_path):
    (tmp_path / ".env").write_text("QT_CLM_DATA_PATH=data/x.csv\nQT_CLM_STORE_DIR=store\n")
    s = _load(tmp_path / "..", env_file=tmp_path / ".env").settings
    assert s.resolved_data_path == (tmp_path / "data" / "x.csv").resolve()
    assert s.resolved_store_dir == (tmp_path / "store").resolve()


@pytest.mark.parametrize(
    "env, expected",
    [
        ({"QT_CLM_RETRAIN_HOURS": "abc"},
         "QT_CLM_RETRAIN_HOURS=abc (from environment) is not valid: use a number > 0 and <= 8760."),
        ({"QT_CLM_RETRAIN_HOURS": "-1"},
         "QT_CLM_RETRAIN_HOURS=-1 (from environment) is not valid: use a number > 0 and <= 8760."),
        ({"QT_CLM_SHADOW_MIN": "1.5"},
         "QT_CLM_SHADOW_MIN=1.5 (from environment) is not valid: use a whole number >= 1 and "
         "<= 10000000."),
        ({"QT_CLM_AUTO_PROMOTE": "maybe"},
         "QT_CLM_AUTO_PROMOTE=maybe (from environment) is not valid: use true or false."),
        ({"QT_CLM_BACKEND": "k8s"},
         "QT_CLM_BACKEND=k8s (from environment) is not valid: use docker, process or none."),
        ({"QT_CLM_RETRAIN_HOURS": "1e309"},
         "QT_CLM_RETRAIN_HOURS=1e309 (from environment) is not valid: use a number > 0 and "
         "<= 8760."),
        ({"QT_CLM_CHECK_MINUTES": "1e12"},
         "QT_CLM_CHECK_MINUTES=1e12 (from environment) is not valid: use a number > 0 and "
         "<= 10080."),
        ({"QT_CLM_MODEL_FILE": "./../etc/x"},
         "QT_CLM_MODEL_FILE=./../etc/x (from environment) is not valid: use a bare file name "
         "inside the deploy folder, like xgb_model.ubj (no folder, no ..)."),
    ],
)
def test_bad_values_are_one_line_naming_variable_source_and_allowed(tmp_path, env, expected):
    with pytest.raises(ConfigError) as err:
        _load(tmp_path, env)
    assert str(err.value) == expected


def test_unknown_name_in_dotenv_names_the_file_and_suggests(tmp_path):
    (tmp_path / ".env").write_text("QT_CLM_RETRAN_HOURS=3\n")
    with pytest.raises(ConfigError) as err:
        _load(tmp_path)
    msg = str(err.value)
    assert "QT_CLM_RETRAN_HOURS" in msg and str(tmp_path / ".env") in msg
    assert "did you mean QT_CLM_RETRAIN_HOURS" in msg and "\n" not in msg


def test_missing_env_file_flag_is_one_line(tmp_path):
    with pytest.raises(ConfigError, match="no such file"):
        _load(tmp_path, env_file=tmp_path / "nope.env")


def test_write_user_settings_validates_and_never_touches_dotenv(tmp_path):
    (tmp_path / ".env").write_text("QT_CLM_RETRAIN_HOURS=6\n")
    before = (tmp_path / ".env").read_text()
    path = write_user_settings({"QT_CLM_DRIFT_HOURS": "2"})
    assert path == user_config_file() and "QT_CLM_DRIFT_HOURS=2" in path.read_text()
    with pytest.raises(ConfigError):
        write_user_settings({"QT_CLM_DRIFT_HOURS": "soon"})
    assert "QT_CLM_DRIFT_HOURS=2" in path.read_text()
    assert (tmp_path / ".env").read_text() == before
    loaded = load_settings(environ={}, cwd=tmp_path)
    assert loaded.settings.drift_hours == 2 and loaded.settings.retrain_hours == 6


def test_config_command_prints_every_setting_with_source(tmp_path):
    (tmp_path / ".env").write_text("QT_CLM_RETRAIN_HOURS=12\n")
    out = subprocess.run([sys.executable, "-m", "clm_tray", "config"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    line = next(x for x in out.stdout.splitlines() if x.startswith("QT_CLM_RETRAIN_HOURS"))
    assert "12.0" in line and str(tmp_path / ".env") in line
    assert "QT_CLM_SHADOW_MIN" in out.stdout and "[default]" in out.stdout
    assert "store:" in out.stdout and "deploy:" in out.stdout


def test_engine_never_imports_qt():
    """Every module of clm_tray.core loads in a fresh interpreter without Qt."""
    code = ("import sys, pkgutil, importlib, clm_tray.core, clm_tray.cli.engine;"
            "[importlib.import_module(m.name)"
            " for m in pkgutil.walk_packages(clm_tray.core.__path__, 'clm_tray.core.')];"
            "print([m for m in sys.modules if m.startswith(('PySide6', 'shiboken'))])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
