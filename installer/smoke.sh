#!/usr/bin/env bash
# Smoke-test a built clm-tray: installer/smoke.sh [PATH_TO_EXECUTABLE]
# (default dist/clm-tray/clm-tray). Everything runs in a temporary HOME and workspace, with no
# display (QT_QPA_PLATFORM=offscreen). Prints one PASS/FAIL line per step; exits 1 if any step
# failed. A sub-command missing from the build is a FAIL that names it. SMOKE_QUICK=1 skips
# the one slow step (a real retrain cycle of the demo, ~1 min).
set -uo pipefail

APP=${1:-dist/clm-tray/clm-tray}
[ -x "$APP" ] || APP="$APP.exe"
if [ ! -x "$APP" ]; then
  echo "smoke.sh: no executable at ${1:-dist/clm-tray/clm-tray}; run installer/build.sh first" >&2
  exit 2
fi
APP=$(cd "$(dirname "$APP")" && pwd)/$(basename "$APP")
PY=$(command -v python3 || command -v python || true)
# A Python with XGBoost plays the trader's backend that unpickles the app's xgb_model.pkl
# (SMOKE_PYTHON, else the checkout's .venv); without one that check is skipped.
BACKEND_PY=${SMOKE_PYTHON:-$(cd "$(dirname "$0")/.." && pwd)/.venv/bin/python}

TMP=$(mktemp -d)
BACKEND_PID=""
cleanup() {
  if [ -n "$BACKEND_PID" ]; then kill "$BACKEND_PID" 2>/dev/null; wait "$BACKEND_PID" 2>/dev/null; fi
  rm -rf "$TMP"
}
trap cleanup EXIT

# A private user: nothing from this machine's settings, Docker or display leaks in.
for v in $(env | sed -n 's/^\(QT_CLM_[A-Z_]*\)=.*/\1/p'); do unset "$v"; done
export HOME=$TMP/home XDG_CONFIG_HOME=$TMP/home/.config XDG_DATA_HOME=$TMP/home/.local/share \
       XDG_STATE_HOME=$TMP/home/.local/state XDG_CACHE_HOME=$TMP/home/.cache
export QT_CLM_STORE_DIR=$TMP/store QT_CLM_LOG_DIR=$TMP/logs QT_CLM_DEPLOY_DIR=$TMP/models \
       QT_CLM_DATA_PATH=$TMP/data.csv QT_CLM_BACKEND=none
export QT_QPA_PLATFORM=offscreen DOCKER_HOST=unix://$TMP/no-docker.sock
unset DISPLAY WAYLAND_DISPLAY
mkdir -p "$HOME" "$TMP/ws" "$TMP/models" && cd "$TMP/ws" || exit 2

FAILED=0
pass() { printf 'PASS  %-28s %s\n' "$1" "$2"; }
fail() { printf 'FAIL  %-28s %s\n' "$1" "$2"; FAILED=1; }

# run NAME TIMEOUT ARGS...: runs the app, leaves $RC, $OUT (stdout), $ERR (stderr), $SECS.
run() {
  local name=$1 limit=$2; shift 2
  local t0 t1
  t0=$(date +%s.%N)
  timeout "$limit" "$APP" "$@" >"$TMP/$name.out" 2>"$TMP/$name.err"
  RC=$?
  t1=$(date +%s.%N)
  SECS=$(awk "BEGIN{printf \"%.1f\", $t1 - $t0}")
  OUT=$(cat "$TMP/$name.out"); ERR=$(tail -n 5 "$TMP/$name.err")
}
is_json() { [ -n "$PY" ] && "$PY" -c 'import json,sys; json.loads(sys.stdin.read())' <<<"$1" 2>/dev/null; }
has_command() { "$APP" --help 2>/dev/null | grep -qE "^\s+$1\b|[{,]$1[,}]"; }
missing() { fail "$1" "sub-command '$2' is not in this build (its clm_tray/cli module is missing or failed to register)"; }

# 1. --version
run version 60 --version
if [ $RC -eq 0 ] && [[ $OUT == "clm-tray "* ]]; then pass "--version" "$OUT (${SECS}s)"
else fail "--version" "exit $RC: $OUT $ERR"; fi

# 2. status --json on an empty temp workspace: exit 0 or 1 both mean it ran.
if has_command status; then
  run status 120 status --json
  if { [ $RC -eq 0 ] || [ $RC -eq 1 ]; } && { [ -z "$PY" ] || is_json "$OUT"; }; then
    pass "status --json" "exit $RC, one JSON object (${SECS}s)"
  else fail "status --json" "exit $RC: ${OUT:0:200} $ERR"; fi
else missing "status --json" status; fi

# 3. diagnose --json: the report works frozen, sees package metadata and bundled resources.
if has_command diagnose; then
  run diagnose 120 diagnose --json --no-probe
  if [ $RC -eq 0 ] && is_json "$OUT"; then
    detail=$("$PY" -c '
import json,sys; r=json.loads(sys.stdin.read())
print("frozen=%s xgboost=%s icons=%s" % (r["clm_tray"]["frozen"], r["packages"]["xgboost"],
      r["folders"]["resources"]["icons"]))' <<<"$OUT")
    if [[ $detail == frozen=True* ]] && [[ $detail != *"xgboost=not installed"* ]]; then
      pass "diagnose --json" "$detail (${SECS}s)"
    else fail "diagnose --json" "$detail"; fi
  else fail "diagnose --json" "exit $RC: ${OUT:0:200} $ERR"; fi
else missing "diagnose --json" diagnose; fi

# 4. autostart round trip in the temp HOME points at this executable.
if has_command autostart; then
  ENTRY=$XDG_CONFIG_HOME/autostart/clm-tray.desktop
  run autostart_on 60 autostart enable
  if [ $RC -eq 0 ] && grep -qxF "Exec=$APP gui" "$ENTRY" 2>/dev/null; then
    run autostart_off 60 autostart disable
    if [ $RC -eq 0 ] && [ ! -e "$ENTRY" ]; then pass "autostart enable/disable" "$ENTRY"
    else fail "autostart enable/disable" "disable: exit $RC $ERR"; fi
  else fail "autostart enable/disable" "exit $RC: $(grep Exec= "$ENTRY" 2>/dev/null) $ERR"; fi
else missing "autostart enable/disable" autostart; fi

# 5. The reference backend starts from the built app and answers /health.
if has_command backend; then
  PORT=$("${PY:-python3}" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  "$APP" backend serve --models-dir "$TMP/models" --host 127.0.0.1 --port "$PORT" \
    >"$TMP/backend.out" 2>&1 &
  BACKEND_PID=$!
  code=""
  for _ in $(seq 1 60); do
    code=$("$PY" -c 'import sys,urllib.request,urllib.error
try: print(urllib.request.urlopen(sys.argv[1], timeout=1).status)
except urllib.error.HTTPError as e: print(e.code)
except Exception: pass' "http://127.0.0.1:$PORT/health")
    [ -n "$code" ] && break
    kill -0 "$BACKEND_PID" 2>/dev/null || break
    sleep 0.5
  done
  if [ -n "$code" ]; then pass "backend serve" "/health answered HTTP $code"
  else fail "backend serve" "no answer on port $PORT: $(tail -n 3 "$TMP/backend.out")"; fi
  kill "$BACKEND_PID" 2>/dev/null; wait "$BACKEND_PID" 2>/dev/null; BACKEND_PID=""
else missing "backend serve" backend; fi

# 6. The GUI renders offscreen and saves a screenshot.
if has_command gui; then
  SHOT=$TMP/x.png
  run gui 120 gui --screenshot "$SHOT"
  if [ $RC -eq 0 ] && [ -s "$SHOT" ] && [ "$(head -c 4 "$SHOT" | tail -c 3)" = "PNG" ]; then
    cp "$SHOT" "${SMOKE_SCREENSHOT:-/dev/null}" 2>/dev/null
    pass "gui --screenshot" "$(wc -c <"$SHOT") byte PNG (${SECS}s)"
  else fail "gui --screenshot" "exit $RC, screenshot $( [ -s "$SHOT" ] && echo written || echo missing): $ERR"; fi
else missing "gui --screenshot" gui; fi

# 7. One real retrain cycle in the demo workspace: training in a spawned child of the frozen
#    executable, deploy, the reference backend restarted and verified. SMOKE_QUICK=1 skips it.
if [ "${SMOKE_QUICK:-0}" = 1 ]; then
  echo "SKIP  demo --headless               (SMOKE_QUICK=1)"
elif has_command demo; then
  # The demo workspace's own .env must apply: the environment would override it.
  unset QT_CLM_STORE_DIR QT_CLM_LOG_DIR QT_CLM_DEPLOY_DIR QT_CLM_DATA_PATH QT_CLM_BACKEND
  # The pickle too, as for a backend that unpickles xgb_model.pkl: proves the build kept what
  # writing one needs (XGBoost's XGBClassifier and the scikit-learn and SciPy parts it imports).
  export QT_CLM_DEPLOY_PICKLE=true
  run demo 600 demo --headless --workspace "$TMP/demo"
  unset QT_CLM_DEPLOY_PICKLE
  PKL=$TMP/demo/ai_engine/models/xgb_model.pkl
  if [ $RC -eq 0 ] && [ -s "$PKL" ]; then
    pass "demo --headless" "trained, deployed (+ $(wc -c <"$PKL") byte xgb_model.pkl), backend verified (${SECS}s)"
    if [ -x "$BACKEND_PY" ] && "$BACKEND_PY" -c 'import xgboost' 2>/dev/null; then
      got=$("$BACKEND_PY" -c '
import pickle, sys, numpy as np
model = pickle.loads(open(sys.argv[1], "rb").read())
p = model.predict_proba(np.zeros((1, model.get_booster().num_features()), dtype=np.float32))
print(type(model).__name__, p.shape[1], round(float(p.sum()), 6))' "$PKL" 2>&1 | tail -n 1)
      if [ "$got" = "XGBClassifier 2 1.0" ]; then pass "xgb_model.pkl unpickles" "an XGBClassifier that predicts ($BACKEND_PY)"
      else fail "xgb_model.pkl unpickles" "$got"; fi
    else echo "SKIP  xgb_model.pkl unpickles      (no Python with XGBoost: set SMOKE_PYTHON)"; fi
  elif [ $RC -eq 0 ]; then fail "demo --headless" "no xgb_model.pkl written beside the model"
  else fail "demo --headless" "exit $RC: $(tail -n 3 "$TMP/demo.out") $ERR"; fi
else missing "demo --headless" demo; fi

[ $FAILED -eq 0 ] && echo "smoke.sh: all steps passed" || echo "smoke.sh: some steps FAILED"
exit $FAILED
