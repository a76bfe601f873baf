#!/bin/sh
# GET /cgi-bin/health -> the model identity recorded at container start (503 without a model).
sha="$(cat /tmp/model_sha256)"
if [ -z "$sha" ]; then
    printf 'HTTP/1.0 503 Service Unavailable\r\nContent-Type: application/json\r\n\r\n'
    printf '{"status": "error", "reason": "no model file in /models"}\n'
    exit 0
fi
printf 'HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n'
printf '{"status": "ok", "model_sha256": "%s", "model_version": "%s", "loaded_at": "%s"}\n' \
    "$sha" "$(cat /tmp/model_version)" "$(cat /tmp/loaded_at)"
