"""First run: find the trader's existing project folder and remember it.

The seed's users already have a project like ``C:\\quantum_trader`` with a ``.env`` holding
``QT_CLM_*`` values, ``data/binance_futures_training_data.csv``, ``ai_engine/models/`` and a
Docker container. ``detect_project`` looks, touches nothing and reports what it found;
``save`` remembers only the folder (``QT_CLM_PROJECT_DIR``) in the per-user config file —
the ``.env`` stays the user's and keeps saying what it says.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dotenv import dotenv_values

from clm_tray.core.app.wording import size
from clm_tray.core.config.settings import PREFIX, PROJECT_DATA, PROJECT_MODELS, Settings
from clm_tray.core.config.sources import LoadedSettings, write_user_settings
from clm_tray.core.ml.rowcount import count_rows

DEFAULT_CONTAINER = Settings.model_fields["docker_container"].default
MODEL_SUFFIXES = {".ubj", ".json", ".pkl", ".joblib", ".bin", ".model", ".xgb", ".onnx", ".pt"}
DOCKER_TIMEOUT = 3.0


@dataclass
class ProjectFinding:
    """What a folder holds of a quantum_trader-style project."""

    folder: Path
    exists: bool = False
    env_file: Path | None = None
    env_values: dict[str, str] = field(default_factory=dict)  # the QT_CLM_* lines of .env
    env_error: str = ""
    data_path: Path | None = None
    data_found: bool = False
    data_size: int = 0
    data_rows: int | None = None  # data lines (header excluded)
    data_rows_exact: bool = False
    models_dir: Path | None = None
    models_found: bool = False
    model_files: list[str] = field(default_factory=list)
    backups: int = 0
    retraining_log_last: str = ""
    container: str = DEFAULT_CONTAINER
    container_source: str = "default"  # ".env" or "default"
    docker: str = "not checked"  # running | exited | no such container | Docker not reachable
    docker_running: bool | None = None
    plan: list[str] = field(default_factory=list)  # what the first retrain would do (plan.py)

    @property
    def looks_like_project(self) -> bool:
        return self.exists and (self.env_file is not None or self.data_found or
                                self.models_found)

    def summary_lines(self) -> list[str]:
        """What was found, one line per piece, in the user's words."""
        yes, no = "found", "not found"
        lines = [f"Project folder: {self.folder}" + ("" if self.exists else " (does not exist)")]
        if not self.exists:
            return lines
        if self.env_file:
            names = ", ".join(sorted(self.env_values)) or "no QT_CLM_* values"
            lines.append(f"  .env: {yes} ({len(self.env_values)} QT_CLM_* values: {names})")
        else:
            lines.append(f"  .env: {no} (defaults will be used)")
        if self.env_error:
            lines.append(f"    warning: {self.env_error}")
        if self.data_found:
            rows = "?" if self.data_rows is None else \
                f"{self.data_rows:,}" if self.data_rows_exact else f"~{self.data_rows:,}"
            lines.append(f"  training data: {self.data_path} ({rows} rows, "
                         f"{size(self.data_size)})")
        else:
            lines.append(f"  training data: {no} at {self.data_path}")
        if self.models_found:
            models = ", ".join(self.model_files) or "no model files yet"
            lines.append(f"  models folder: {self.models_dir} ({models}; "
                         f"{self.backups} backup{'s' if self.backups != 1 else ''})")
            if self.retraining_log_last:
                lines.append(f"    retraining_log.txt, last line: {self.retraining_log_last}")
        else:
            lines.append(f"  models folder: {no} at {self.models_dir}")
        lines.append(f"  Docker container: {self.container} (from {self.container_source}) — "
                     f"{self.docker}")
        if self.plan:
            lines.append("What will happen at the first retrain (nothing changes before):")
            lines += [f"  {line}" for line in self.plan]
        return lines

    def to_dict(self) -> dict:
        from dataclasses import asdict

        d = asdict(self)
        d["looks_like_project"] = self.looks_like_project
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in d.items()}


def detect_project(folder: Path, *, check_docker: bool = True,
                   plan: bool = True) -> ProjectFinding:
    """Look at ``folder`` (read-only) for the pieces of an existing project, and (``plan``)
    say what the first retrain would do there."""
    folder = Path(folder).expanduser().absolute()
    f = ProjectFinding(folder=folder, exists=folder.is_dir())
    f.data_path, f.models_dir = folder / PROJECT_DATA, folder / PROJECT_MODELS
    if not f.exists:
        return f
    env = folder / ".env"
    if env.is_file():
        f.env_file = env
        try:
            values = dotenv_values(env, encoding="utf-8")
            f.env_values = {k: (v or "") for k, v in values.items() if k.startswith(PREFIX)}
        except (OSError, UnicodeDecodeError) as exc:
            f.env_error = f"cannot read {env} ({exc})"
    # The .env may move the data or the models folder; look where it says.
    if f.env_values.get(PREFIX + "DATA_PATH"):
        f.data_path = _in_folder(folder, f.env_values[PREFIX + "DATA_PATH"])
    if f.env_values.get(PREFIX + "DEPLOY_DIR"):
        f.models_dir = _in_folder(folder, f.env_values[PREFIX + "DEPLOY_DIR"])
    _look_at_data(f)
    _look_at_models(f)
    if f.env_values.get(PREFIX + "DOCKER_CONTAINER"):
        f.container, f.container_source = f.env_values[PREFIX + "DOCKER_CONTAINER"], ".env"
    if check_docker:
        f.docker, f.docker_running = docker_container_state(f.container)
    if plan and f.looks_like_project:
        f.plan = first_retrain_plan(folder)
    return f


def first_retrain_plan(folder: Path) -> list[str]:
    """The dry-run plan (plan.py) for ``folder`` as if it were saved as the project folder."""
    from clm_tray.core.config.sources import load_settings
    from clm_tray.core.errors import ClmError
    from clm_tray.core.registry.plan import plan_retrain

    env = folder / ".env"
    environ = {**os.environ, PREFIX + "PROJECT_DIR": str(folder)}
    try:
        loaded = load_settings(env if env.is_file() else None, environ=environ, cwd=folder)
        return plan_retrain(loaded.settings).lines()
    except (ClmError, OSError) as exc:
        return [f"cannot plan yet: {exc}"]


def _in_folder(folder: Path, value: str) -> Path:
    p = Path(value).expanduser()
    return p if p.is_absolute() else folder / p


def _look_at_data(f: ProjectFinding) -> None:
    assert f.data_path is not None
    if not f.data_path.is_file():
        return
    f.data_found = True
    f.data_size = f.data_path.stat().st_size
    try:
        f.data_rows, f.data_rows_exact = count_rows(f.data_path, f.data_size)
    except OSError:
        f.data_rows = None


def _look_at_models(f: ProjectFinding) -> None:
    assert f.models_dir is not None
    if not f.models_dir.is_dir():
        return
    f.models_found = True
    for entry in sorted(f.models_dir.iterdir()):
        if entry.is_dir() and entry.name.startswith("backup_"):
            f.backups += 1
        elif entry.is_file() and entry.suffix.lower() in MODEL_SUFFIXES \
                and not entry.name.endswith(".meta.json"):
            f.model_files.append(entry.name)
    log = f.models_dir / "retraining_log.txt"
    if log.is_file():
        f.retraining_log_last = _last_line(log)


def _last_line(path: Path, tail: int = 4096) -> str:
    with open(path, "rb") as fh:
        fh.seek(max(0, path.stat().st_size - tail))
        lines = [ln.strip() for ln in fh.read().decode("utf-8", "replace").splitlines()]
    return next((ln for ln in reversed(lines) if ln), "")


def docker_container_state(name: str, timeout: float = DOCKER_TIMEOUT) -> tuple[str, bool | None]:
    """("running", True) / ("exited", False) / ("no such container", False) /
    ("Docker not reachable (...)", None). Never raises: a missing Docker is a finding."""
    try:
        import docker
        from docker.errors import DockerException, NotFound
    except ImportError:
        return "Docker not reachable (the docker package is not installed)", None
    client = None
    try:
        client = _docker_client(docker, int(max(1, timeout)))
        client.ping()
        try:
            container = client.containers.get(name)
        except NotFound:
            return "no such container", False
        state = str(container.status)
        return state, state == "running"
    except (DockerException, OSError) as exc:
        return f"Docker not reachable ({_first_line(exc)})", None
    except Exception as exc:  # noqa: BLE001 - requests/urllib3 errors vary by version
        return f"Docker not reachable ({_first_line(exc)})", None
    finally:
        if client is not None:
            client.close()


def _docker_client(docker: Any, timeout: int) -> Any:
    """Find the engine the way the backend will (DOCKER_HOST, then the Docker context)."""
    if os.environ.get("DOCKER_HOST"):
        return docker.from_env(timeout=timeout)
    try:
        from clm_tray.core.backend.docker_engine import resolve_docker_url
    except ImportError:
        return docker.from_env(timeout=timeout)
    return docker.DockerClient(base_url=resolve_docker_url(), timeout=timeout)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:160]


def candidate_folders(loaded: LoadedSettings | None = None, cwd: Path | None = None) -> list[Path]:
    """Where a project is likely to be when the user names none."""
    out: list[Path] = []
    if loaded is not None and loaded.settings.project_dir:
        out.append(loaded.settings.project_dir)
    out.append(Path.cwd() if cwd is None else cwd)
    home = Path.home()
    if sys.platform == "win32":
        out += [Path("C:/quantum_trader"), Path("D:/quantum_trader")]
    out += [home / "quantum_trader", home / "projects" / "quantum_trader",
            home / "src" / "quantum_trader"]
    seen: set[str] = set()
    return [p for p in out if not (str(p) in seen or seen.add(str(p)))]


def find_project(loaded: LoadedSettings | None = None, cwd: Path | None = None,
                 *, check_docker: bool = True) -> ProjectFinding | None:
    """The first likely folder that looks like a project, or None."""
    for folder in candidate_folders(loaded, cwd):
        finding = detect_project(folder, check_docker=False, plan=False)
        if finding.looks_like_project:
            return detect_project(folder, check_docker=check_docker)
    return None


def save(finding: ProjectFinding, path: Path | None = None) -> Path:
    """Remember the project folder in the per-user config file (never in the .env)."""
    return write_user_settings({PREFIX + "PROJECT_DIR": str(finding.folder)}, path)


def is_first_run(loaded: LoadedSettings, environ: dict[str, str] | None = None) -> bool:
    """No per-user config file, no .env found, and no QT_CLM_* in the environment."""
    environ = os.environ if environ is None else environ
    return (loaded.user_file is None and loaded.env_file is None
            and not any(k.startswith(PREFIX) for k in environ))
