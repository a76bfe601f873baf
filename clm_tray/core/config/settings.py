"""Every QT_CLM_* setting as one typed object, and how a variable's raw text is checked.

The fields (names, defaults, allowed ranges, descriptions) and the values derived from them
(resolved folders, backend kind, threads) live here; where values come from — environment,
`.env`, the per-user file — is `config.sources`. Every value is validated by pydantic; a bad
one becomes a single ``ConfigError`` line naming the variable, its source and what is allowed.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import platformdirs
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from clm_tray.core.errors import ConfigError

APP_NAME = "clm-tray"
PREFIX = "QT_CLM_"

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


def convert_raw(field_name: str, raw: str) -> Any:
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


def validated(values: dict[str, Any], sources: dict[str, str]) -> Settings:
    """Settings from converted values; the first bad one is one line naming its source."""
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
    s = validated({fname: convert_raw(fname, raw)}, {fname: "input"})
    return getattr(s, fname)


def closest_name(name: str) -> str | None:
    """The setting a mistyped variable most likely meant (for "did you mean …?")."""
    import difflib

    hits = difflib.get_close_matches(name, list(FIELDS), n=1, cutoff=0.75)
    return hits[0] if hits else None


def describe(field_name: str) -> str:
    return Settings.model_fields[field_name].description or ""
