"""All configuration in one typed object, with where every value came from.

Precedence: process environment > `.env` (``--env-file``, else the working directory's, else
``QT_CLM_PROJECT_DIR``'s) > the per-user config file (``config.env`` in platformdirs' user
config dir) > defaults. Every value is validated by pydantic; a bad one becomes a single
``ConfigError`` line naming the variable, its source and what is allowed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import platformdirs
from dotenv import dotenv_values
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from clm_tray.core.errors import ConfigError

APP_NAME = "clm-tray"
PREFIX = "QT_CLM_"
USER_CONFIG_NAME = "config.env"

# The existing quantum_trader layout that QT_CLM_PROJECT_DIR implies.
PROJECT_DATA = Path("data") / "binance_futures_training_data.csv"
PROJECT_MODELS = Path("ai_engine") / "models"

BackendKind = Literal["docker", "process", "none"]


class Settings(BaseModel):
    """Every QT_CLM_* setting. Field ``foo_bar`` is variable ``QT_CLM_FOO_BAR``."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, frozen=False)

    # The seed's .env names and defaults.
    enabled: bool = Field(True, description="Run the scheduled checks at all")
    retrain_hours: float = Field(24, gt=0, le=8760,
        description="Retrain when the champion is older")
    drift_hours: float = Field(6, gt=0, le=8760, description="Hours between drift checks")
    perf_hours: float = Field(3, gt=0, le=8760, description="Hours between live-performance checks")
    drift_threshold: float = Field(0.05, gt=0, le=10,
        description="Drift score (weighted PSI) limit")
    shadow_min: int = Field(100, ge=1, le=10_000_000,
        description="Rows a shadow test needs before deciding")
    auto_retrain: bool = Field(True, description="Retrain by itself when a check says so")
    auto_promote: bool = Field(True, description="Deploy a candidate that passes by itself")
    # Schedule and training.
    check_minutes: float = Field(30, gt=0, le=10080, description="Minutes between model-age checks")
    train_timeout: float = Field(600, gt=0, le=604800,
        description="Seconds before training is killed")
    train_threads: int = Field(0, ge=0, le=1024,
        description="XGBoost threads; 0 = all cores but one")
    n_estimators: int = Field(300, ge=1, le=100_000,
        description="XGBoost boosting rounds (upper bound)")
    max_depth: int = Field(6, ge=1, le=32, description="XGBoost tree depth")
    learning_rate: float = Field(0.05, gt=0, le=1, description="XGBoost learning rate")
    early_stopping: int = Field(30, ge=0, le=100_000,
        description="Rounds without validation gain; 0 = off")
    test_fraction: float = Field(0.2, gt=0, lt=0.5, description="Share of time held out")
    embargo_hours: float = Field(24, ge=0, le=8760, description="Gap between train and test, hours")
    leak_margin: float = Field(0.10, gt=0, le=1, description="Test accuracy over baseline = leak")
    seed: int = Field(42, ge=0, le=2**32 - 1, description="Random seed for training")
    dask_scheduler: str = Field(
        "", pattern=r"^(|local|local:[1-9][0-9]*|(tcp|tls|ws|wss)://\S+)$",
        description="Train on Dask: empty = here, local, local:N or tcp://host:port")
    # Decisions (README "How clm-tray decides").
    edge_gate: bool = Field(True, description="Deploy only a model that beats guessing")
    edge_p: float = Field(0.05, gt=0, le=0.5, description="Edge test p-value limit")
    min_edge: float = Field(0, ge=0, le=50, description="Edge needed, accuracy points")
    coerce_bad_cells: bool = Field(False, description="Bad feature cells become empty, not errors")
    versions_keep: int = Field(50, ge=1, le=100_000,
        description="Never-deployed versions kept in the store")
    device: Literal["cpu", "cuda"] = Field(
        "cpu", description="Where XGBoost trains: cpu, or cuda (needs the [gpu] extra)")
    # Data.
    data_path: Path | None = Field(None, description="Training data, CSV or Parquet")
    target: str = Field("target", min_length=1, description="Name of the binary target column")
    features: list[str] = Field(default_factory=list, description="Comma list; empty = auto")
    data_encoding: str = Field("", description="Encoding of a CSV that is not UTF-8 (latin-1)")
    # Folders.
    project_dir: Path | None = Field(None, description="Project root like C:\\quantum_trader")
    store_dir: Path | None = Field(None, description="Model store (versions, history)")
    deploy_dir: Path | None = Field(None, description="The backend's models folder")
    log_dir: Path | None = Field(None, description="Where clm-tray writes its logs")
    model_file: str = Field("xgb_model.ubj", min_length=1, description="Deployed model name")
    backup_keep: int = Field(10, ge=1, le=1000, description="Backups kept in the deploy folder")
    deploy_pickle: bool | None = Field(
        None, description="Write xgb_model.pkl too (never loaded); empty = if the folder has one")
    # Backend.
    backend: BackendKind | None = Field(None, description="docker | process | none")
    docker_container: str = Field("quantum_backend_prod", description="Container to restart")
    docker_stop_timeout: float = Field(10, ge=0, le=3600,
        description="Seconds Docker waits on stop")
    backend_command: str = Field("", description="Command line of a process backend")
    health_url: str = Field("http://localhost:8000/health", description="Backend health URL")
    health_timeout: float = Field(60, gt=0, le=3600,
        description="Seconds to wait for a healthy backend")
    health_model_key: str = Field("model_sha256", description="JSON key of the loaded sha256")
    health_version_key: str = Field("model_version", description="JSON key of the version")
    # Monitoring.
    perf_drop: float = Field(0.02, ge=0, le=1,
        description="Live accuracy drop that triggers retrain")
    drift_window_hours: float = Field(0, ge=0, le=87600,
        description="0 = rows newer than training data")
    shadow_logloss_tol: float = Field(0.01, ge=0, le=10, description="Log-loss worsening tolerated")
    backoff_fraction: float = Field(0.25, gt=0, le=1, description="Retry after interval x this")
    redis_url: str = Field("", description="redis://host:port/db to mirror events; empty = off")
    redis_stream: str = Field("clm:events", min_length=1, description="Redis stream name")
    demo_feed_minutes: float = Field(0, ge=0, le=10080,
        description="Demo: append a bar every N min")
    # Desktop.
    notify_success: bool = Field(True, description="Notify on successful deploys too")
    notify_throttle_minutes: float = Field(30, ge=0, le=10080,
        description="Silence identical repeats")

    @field_validator("data_encoding")
    @classmethod
    def _known_encoding(cls, value: str) -> str:
        import codecs

        try:
            if value.strip():
                codecs.lookup(value.strip())
        except LookupError as exc:
            raise ValueError(str(exc)) from None
        return value.strip()

    @field_validator("model_file")
    @classmethod
    def _bare_file_name(cls, value: str) -> str:
        """The model is written inside the deploy folder and nowhere else: a bare name only."""
        if not is_bare_name(value):
            raise ValueError("not a bare file name")
        return value

    # ---- derived values -------------------------------------------------------------------
    @property
    def resolved_data_path(self) -> Path | None:
        if self.data_path:
            return self._anchored(self.data_path)
        if self.project_dir:
            return self.project_dir / PROJECT_DATA
        return None

    @property
    def resolved_deploy_dir(self) -> Path | None:
        if self.deploy_dir:
            return self._anchored(self.deploy_dir)
        if self.project_dir:
            return self.project_dir / PROJECT_MODELS
        return None

    @property
    def resolved_store_dir(self) -> Path:
        if self.store_dir:
            return self._anchored(self.store_dir)
        return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))

    @property
    def resolved_log_dir(self) -> Path:
        if self.log_dir:
            return self._anchored(self.log_dir)
        return Path(platformdirs.user_log_dir(APP_NAME, appauthor=False))

    @property
    def resolved_backend(self) -> str:
        if self.backend:
            return self.backend
        return "docker" if self.project_dir else "none"

    @property
    def effective_threads(self) -> int:
        return self.train_threads or max(1, (os.cpu_count() or 2) - 1)

    def _anchored(self, p: Path) -> Path:
        """Relative paths are relative to the project dir when one is set."""
        p = p.expanduser()
        if not p.is_absolute() and self.project_dir:
            return self.project_dir / p
        return p


def is_bare_name(name: str) -> bool:
    """A file name with no folder part: no separator (either OS's), no ``..``, not absolute."""
    return bool(name) and name not in (".", "..") and not any(
        c in name for c in ("/", "\\", ":", "\0")) and name.strip() == name


def var_name(field_name: str) -> str:
    return PREFIX + field_name.upper()


FIELDS: dict[str, str] = {var_name(n): n for n in Settings.model_fields}


def user_config_file() -> Path:
    return Path(platformdirs.user_config_dir(APP_NAME, appauthor=False)) / USER_CONFIG_NAME


@dataclass
class LoadedSettings:
    """The settings plus where each value came from (for `clm-tray config` and the GUI)."""

    settings: Settings
    sources: dict[str, str] = field(default_factory=dict)  # field name -> "env" / path / default
    env_file: Path | None = None
    user_file: Path | None = None


def _allowed(field_name: str) -> str:
    info = Settings.model_fields[field_name]
    ann = info.annotation
    text = {bool: "true or false", int: "a whole number", float: "a number",
            bool | None: "true, false or empty"}.get(ann, "")
    if field_name == "backend":
        text = "docker, process or none"
    if field_name == "dask_scheduler":
        text = "empty, local, local:N (N workers) or a scheduler address like tcp://host:8786"
    if field_name == "data_encoding":
        text = "a text encoding Python knows, like latin-1 or cp1252 (empty = UTF-8)"
    if field_name == "model_file":
        text = "a bare file name inside the deploy folder, like xgb_model.ubj (no folder, no ..)"
    bounds = []
    for m in info.metadata:
        for attr, sym in (("gt", ">"), ("ge", ">="), ("lt", "<"), ("le", "<=")):
            v = getattr(m, attr, None)
            if v is not None:
                bounds.append(f"{sym} {v}")
    if bounds:
        text = f"{text or 'a value'} {' and '.join(bounds)}"
    return text or "a text value"


def _convert(field_name: str, raw: str) -> Any:
    """Turn the raw text of a variable into what the field wants (lists are comma separated)."""
    raw = raw.strip()
    if field_name == "features":
        return [x.strip() for x in raw.split(",") if x.strip()]
    ann = Settings.model_fields[field_name].annotation
    if raw == "" and ann not in (str,):
        return None if Settings.model_fields[field_name].default is None else _default(field_name)
    return raw


def _default(field_name: str) -> Any:
    return Settings.model_fields[field_name].get_default(call_default_factory=True)


def _read_env_file(path: Path) -> dict[str, str]:
    try:
        values = dotenv_values(path, encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read it ({exc}); fix or remove the file.") from exc
    return {k: (v or "") for k, v in values.items()}


def _find_env_file(env_file: Path | None, environ: dict[str, str], cwd: Path,
                   user_values: dict[str, str], user_file: Path) -> Path | None:
    """--env-file, else ./.env, else the .env of QT_CLM_PROJECT_DIR (from the environment or
    the per-user file — so the tray started at login in $HOME still finds the project's)."""
    if env_file is not None:
        if not env_file.is_file():
            raise ConfigError(f"--env-file {env_file}: no such file; give the path of your .env.")
        return env_file
    if (cwd / ".env").is_file():
        return cwd / ".env"
    for project, base in ((environ.get("QT_CLM_PROJECT_DIR"), cwd),
                          (user_values.get("QT_CLM_PROJECT_DIR"), user_file.parent)):
        if project:
            folder = Path(project).expanduser()
            folder = folder if folder.is_absolute() else base / folder
            if (folder / ".env").is_file():
                return folder / ".env"
    return None


def load_settings(
    env_file: Path | str | None = None,
    *,
    environ: dict[str, str] | None = None,
    cwd: Path | None = None,
    user_file: Path | None = None,
) -> LoadedSettings:
    """Read every source in precedence order and return validated settings with sources.

    ``environ``, ``cwd`` and ``user_file`` exist so tests can drive every source for real.
    """
    environ = dict(os.environ if environ is None else environ)
    cwd = Path.cwd() if cwd is None else cwd
    user_file = user_config_file() if user_file is None else user_file

    layers: list[tuple[str, dict[str, str]]] = []
    user_values = _read_env_file(user_file) if user_file.is_file() else {}
    if user_values:
        layers.append((str(user_file), user_values))
    found_env = _find_env_file(Path(env_file) if env_file else None, environ, cwd,
                               user_values, user_file)
    env_layer: dict[str, str] = {}
    if found_env is not None:
        env_layer = _read_env_file(found_env)
        layers.append((str(found_env), env_layer))
    layers.append(("environment", {k: v for k, v in environ.items() if k.startswith(PREFIX)}))

    # A project dir named only in the environment can also bring its .env (handled above);
    # one named inside the user file cannot bring another .env: keep it simple and explicit.
    raw: dict[str, tuple[str, str]] = {}
    for source, values in layers:
        for name, value in values.items():
            if not name.startswith(PREFIX):
                continue
            if name not in FIELDS:
                near = _closest(name)
                hint = f" (did you mean {near}?)" if near else ""
                raise ConfigError(
                    f"{name} in {source} is not a clm-tray setting{hint}; "
                    f"remove it or see `clm-tray config` for the valid names."
                )
            raw[FIELDS[name]] = (value, source)

    values: dict[str, Any] = {}
    sources: dict[str, str] = {n: "default" for n in Settings.model_fields}
    for fname, (value, source) in raw.items():
        values[fname] = _convert(fname, value)
        sources[fname] = source
    settings = _validate(values, sources)
    # A relative path written in a file is relative to that file's folder.
    for fname in ("project_dir", "data_path", "store_dir", "deploy_dir", "log_dir"):
        p = getattr(settings, fname)
        src = sources[fname]
        if p is not None and src not in ("default", "environment") and not p.is_absolute():
            setattr(settings, fname, (Path(src).parent / p.expanduser()).resolve())
    return LoadedSettings(settings, sources, found_env, user_file if user_file.is_file() else None)


def _validate(values: dict[str, Any], sources: dict[str, str]) -> Settings:
    try:
        return Settings(**values)
    except ValidationError as exc:
        err = exc.errors()[0]
        fname = str(err["loc"][0]) if err["loc"] else "?"
        source = sources.get(fname, "default")
        shown = values.get(fname)
        raise ConfigError(
            f"{var_name(fname)}={shown!s} (from {source}) is not valid: "
            f"use {_allowed(fname)}."
        ) from None


def validate_value(name: str, raw: str) -> Any:
    """Check one variable's raw text (the Settings dialog uses this); returns the typed value."""
    if name not in FIELDS:
        raise ConfigError(f"{name} is not a clm-tray setting.")
    fname = FIELDS[name]
    s = _validate({fname: _convert(fname, raw)}, {fname: "input"})
    return getattr(s, fname)


def _closest(name: str) -> str | None:
    import difflib

    hits = difflib.get_close_matches(name, list(FIELDS), n=1, cutoff=0.75)
    return hits[0] if hits else None


def write_user_settings(updates: dict[str, str], path: Path | None = None) -> Path:
    """Merge ``updates`` (VAR -> raw text) into the per-user config file, atomically.

    Values are validated first; the user's `.env` is never touched.
    """
    path = user_config_file() if path is None else path
    for name, value in updates.items():
        validate_value(name, value)
    current = _read_env_file(path) if path.is_file() else {}
    current.update(updates)
    lines = ["# clm-tray per-user settings (written by clm-tray; .env and env vars win)"]
    lines += [f"{k}={_quote(v)}" for k, v in sorted(current.items()) if v is not None]
    from clm_tray.core.fsutil import atomic_write_text

    atomic_write_text(path, "\n".join(lines) + "\n", private=True)  # may hold a password
    return path


def _quote(v: str) -> str:
    if v == "" or any(c in v for c in " #'\"\\"):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return v


def describe(field_name: str) -> str:
    return Settings.model_fields[field_name].description or ""
