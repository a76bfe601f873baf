#!/bin/sh
# Test backend: remember which model was in /models when the container started, then serve
# that identity at /cgi-bin/health (busybox httpd + CGI). PORT comes from the test.
MODEL="${MODEL_FILE:-/models/xgb_model.ubj}"
META="${MODEL%.*}.meta.json"
mkdir -p /tmp
if [ -f "$MODEL" ]; then
    sha256sum "$MODEL" | cut -d ' ' -f 1 > /tmp/model_sha256
else
    : > /tmp/model_sha256
fi
version=""
if [ -f "$META" ]; then
    version="$(sed -n 's/.*"version": *"\([^"]*\)".*/\1/p' "$META" | head -n 1)"
fi
printf '%s' "$version" > /tmp/model_version
date -u +%Y-%m-%dT%H:%M:%SZ > /tmp/loaded_at
exec httpd -f -p "127.0.0.1:${PORT:-8000}" -h /www
