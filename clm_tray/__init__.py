"""clm-tray: a Continuous Learning Manager for a self-hosted XGBoost trading backend."""

__version__ = "0.1.0"
