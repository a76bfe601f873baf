"""Settings in people's words: group, label and unit per setting (the variable name is the
tooltip). A setting added later without an entry here still shows, under "Other", with its
description as the label, so nothing becomes uneditable."""

from __future__ import annotations

from clm_tray.core.config.settings import Settings, describe

GROUPS = ("Schedule", "Training", "Deploy", "Backend", "Notifications", "Other")

# field -> (group, label, unit)
LABELS: dict[str, tuple[str, str, str]] = {
    "enabled": ("Schedule", "Run the scheduled checks", ""),
    "auto_retrain": ("Schedule", "Retrain by itself when a check says so", ""),
    "retrain_hours": ("Schedule", "Retrain when the model is older than", "hours"),
    "check_minutes": ("Schedule", "Check the model's age and the backend every", "minutes"),
    "drift_hours": ("Schedule", "Check for drift every", "hours"),
    "perf_hours": ("Schedule", "Check live accuracy every", "hours"),
    "drift_threshold": ("Schedule", "Drift alarm level (weighted PSI)", ""),
    "perf_drop": ("Schedule", "Retrain when live accuracy falls below test by", "fraction"),
    "drift_window_hours": ("Schedule", "Drift looks back over (0 = since training)", "hours"),
    "backoff_fraction": ("Schedule", "After a failure, retry after this share of the interval",
                         "fraction"),
    "demo_feed_minutes": ("Schedule", "Demo: add a new bar every (0 = off)", "minutes"),
    "data_path": ("Training", "Training data file (CSV or Parquet)", ""),
    "target": ("Training", "Column to predict", ""),
    "features": ("Training", "Columns to learn from (empty = all)", ""),
    "train_timeout": ("Training", "Stop training after", "seconds"),
    "train_threads": ("Training", "CPU threads for training (0 = all but one)", ""),
    "n_estimators": ("Training", "Most trees (boosting rounds)", "trees"),
    "max_depth": ("Training", "Tree depth", "levels"),
    "learning_rate": ("Training", "Learning rate", ""),
    "early_stopping": ("Training", "Stop when no better for (0 = never)", "rounds"),
    "test_fraction": ("Training", "Newest data kept aside for the test", "fraction"),
    "embargo_hours": ("Training", "Gap between training and test data", "hours"),
    "leak_margin": ("Training", "Suspect a leak when test beats always-guessing by",
                    "fraction"),
    "seed": ("Training", "Random seed", ""),
    "data_encoding": ("Training", "Text encoding of a non-UTF-8 CSV (e.g. latin-1)", ""),
    "coerce_bad_cells": ("Training", "Treat a non-numeric cell as empty instead of stopping",
                         ""),
    "device": ("Training", "Train on (cpu, or cuda with the GPU build)", ""),
    "dask_scheduler": ("Training", "Train on a Dask cluster (empty = here, local, tcp://…)",
                       ""),
    "edge_gate": ("Deploy", "Deploy only a model that beats always-guessing", ""),
    "edge_p": ("Deploy", "How sure the edge must be (p-value below)", ""),
    "min_edge": ("Deploy", "Smallest edge over always-guessing", "points"),
    "shadow_min": ("Deploy", "Rows a new model needs before it is compared", "rows"),
    "shadow_logloss_tol": ("Deploy", "Log-loss worsening still accepted", ""),
    "auto_promote": ("Deploy", "Install a new model that passes by itself", ""),
    "project_dir": ("Deploy", "Project folder (like C:\\quantum_trader)", ""),
    "deploy_dir": ("Deploy", "The backend's models folder", ""),
    "model_file": ("Deploy", "Model file name in that folder", ""),
    "backup_keep": ("Deploy", "Backups kept in the models folder", "backups"),
    "deploy_pickle": ("Deploy", "Write xgb_model.pkl (empty = when the folder has one)", ""),
    "versions_keep": ("Deploy", "Never-used models kept in the store", "models"),
    "store_dir": ("Deploy", "Model store (all versions and history)", ""),
    "log_dir": ("Deploy", "Log folder", ""),
    "backend": ("Backend", "How the backend runs", ""),
    "docker_container": ("Backend", "Docker container to restart", ""),
    "docker_stop_timeout": ("Backend", "Docker waits for a clean stop", "seconds"),
    "backend_command": ("Backend", "Command that starts the backend", ""),
    "health_url": ("Backend", "Backend health address", ""),
    "health_timeout": ("Backend", "Wait for a healthy backend up to", "seconds"),
    "health_model_key": ("Backend", "Health answer's key for the model fingerprint", ""),
    "health_version_key": ("Backend", "Health answer's key for the model version", ""),
    "notify_success": ("Notifications", "Also notify when things go well", ""),
    "notify_throttle_minutes": ("Notifications", "Do not repeat the same notice within",
                                "minutes"),
    "redis_url": ("Notifications", "Mirror events to Redis (empty = off)", ""),
    "redis_stream": ("Notifications", "Redis stream name", ""),
}


def label_of(field: str) -> tuple[str, str, str]:
    """(group, label, unit) for a settings field; unknown fields go to "Other"."""
    if field in LABELS:
        return LABELS[field]
    return ("Other", describe(field) or field.replace("_", " ").capitalize(), "")


def grouped_fields() -> list[tuple[str, list[str]]]:
    """Every settings field, grouped in GROUPS order, each group in the order above."""
    order = {f: i for i, f in enumerate(LABELS)}
    groups: dict[str, list[str]] = {g: [] for g in GROUPS}
    for field in Settings.model_fields:
        groups[label_of(field)[0]].append(field)
    return [(g, sorted(fs, key=lambda f: order.get(f, len(order))))
            for g, fs in groups.items() if fs]
