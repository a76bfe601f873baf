"""The `.env` of the tests' small workspaces, written once.

``GATED_ENV`` keeps the edge gate on (the gate's own tests and the replay); ``SMALL_ENV``
switches it off: the small data (6 symbols x 400 bars) carries no edge a test can prove (the
demo's signal shows from about 30 x 600), and most tests are about deploying, rolling back and
scheduling, not the gate. Tests import it as ``small_env`` (pytest puts ``tests/`` on the path
for its root conftest).
"""

GATED_ENV = """QT_CLM_DATA_PATH=data/train.csv
QT_CLM_STORE_DIR=store
QT_CLM_DEPLOY_DIR=models
QT_CLM_LOG_DIR=logs
QT_CLM_BACKEND=none
QT_CLM_N_ESTIMATORS=40
QT_CLM_EARLY_STOPPING=10
QT_CLM_TRAIN_THREADS=1
QT_CLM_SHADOW_MIN=100
"""
SMALL_ENV = GATED_ENV + "QT_CLM_EDGE_GATE=false\n"
