#!/usr/bin/env bash
# An MLflow tracking server on loopback: SQLite backend, artifacts proxied by the server.
#
#   scripts/mlflow-server.sh up       start it (own process group), wait for /health
#   scripts/mlflow-server.sh down     stop the process group (idempotent)
#   scripts/mlflow-server.sh status   running or not, and the URL
#   scripts/mlflow-server.sh env      the client settings as shell exports (eval "$(... env)")
#
# Clients (the Spark drivers, the promotion task, the model API) talk HTTP only: with
# --serve-artifacts they upload and download artifacts through the server (mlflow-artifacts:/),
# so they need no access to where the server keeps them. The server keeps them in a local folder:
# MLflow's hdfs:// artifact store needs pyarrow's HadoopFileSystem, i.e. libhdfs.so from a Hadoop
# binary distribution plus a Hadoop CLASSPATH, which the Maven-fetched jars of hadoop/ do not
# include (see docs/decisions/0004-shipping-the-library-to-executors.md, "MLflow artifacts").
#
# Environment (defaults):
#   GENOFLOW_HOME            repo root (the folder above this script)
#   MLFLOW_STATE_DIR         $GENOFLOW_HOME/.genoflow/mlflow-server   (mlflow.db, artifacts/, server.log)
#   MLFLOW_SERVER_HOST       127.0.0.1
#   MLFLOW_SERVER_PORT       5000    (the same port as docker-compose)
#   MLFLOW_UP_TIMEOUT        120     seconds to wait for /health
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
GENOFLOW_HOME="${GENOFLOW_HOME:-$ROOT}"
STATE="${MLFLOW_STATE_DIR:-$GENOFLOW_HOME/.genoflow/mlflow-server}"
HOST="${MLFLOW_SERVER_HOST:-127.0.0.1}"
PORT="${MLFLOW_SERVER_PORT:-5000}"
UP_TIMEOUT="${MLFLOW_UP_TIMEOUT:-120}"
URL="http://$HOST:$PORT"
PIDFILE="$STATE/server.pid"
LOG="$STATE/server.log"

log() { echo "[mlflow] $*" >&2; }
die() { echo "[mlflow] ERROR: $*" >&2; exit 1; }

if [[ -x "$ROOT/.venv/bin/mlflow" ]]; then MLFLOW="${MLFLOW:-$ROOT/.venv/bin/mlflow}"; else MLFLOW="${MLFLOW:-mlflow}"; fi

running_pgid() {  # the server's process group while it lives, or nothing
    [[ -f "$PIDFILE" ]] || return 0
    local pid
    pid="$(<"$PIDFILE")"
    [[ "$pid" =~ ^[0-9]+$ ]] || return 0
    if [[ -r "/proc/$pid/cmdline" ]]; then
        if tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q mlflow; then echo "$pid"; fi
    elif kill -0 -- "-$pid" 2>/dev/null; then
        echo "$pid"  # the leader exited but its workers live on
    fi
    return 0
}

healthy() { curl -fsS --max-time 5 -o /dev/null "$URL/health" 2>/dev/null; }

port_busy() { (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null; }

up() {
    mkdir -p "$STATE/artifacts"
    if [[ -n "$(running_pgid)" ]]; then
        log "already running (process group $(<"$PIDFILE")): $URL"
        return 0
    fi
    ! port_busy "$PORT" || die "port $PORT on $HOST is taken (choose another: MLFLOW_SERVER_PORT=...)"
    # No job runner (a huey consumer for GenAI scoring jobs that ignores SIGTERM); one worker.
    # setsid: the server and its gunicorn/uvicorn workers form one process group to stop together.
    (exec setsid env MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false "$MLFLOW" server \
        --backend-store-uri "sqlite:///$STATE/mlflow.db" \
        --serve-artifacts --artifacts-destination "$STATE/artifacts" \
        --host "$HOST" --port "$PORT" --workers 1 >"$LOG" 2>&1 </dev/null) &
    echo "$!" >"$PIDFILE"
    log "started (process group $!), log $LOG; waiting up to ${UP_TIMEOUT}s for $URL/health"
    local deadline=$((SECONDS + UP_TIMEOUT))
    until healthy; do
        [[ -n "$(running_pgid)" ]] || { tail -n 30 "$LOG" >&2; rm -f "$PIDFILE"; die "the server exited"; }
        ((SECONDS < deadline)) || die "no answer from $URL/health after ${UP_TIMEOUT}s (log $LOG)"
        sleep 1
    done
    log "up: $URL (backend sqlite:///$STATE/mlflow.db, artifacts $STATE/artifacts)"
}

down() {
    local pgid
    pgid="$(running_pgid)"
    if [[ -z "$pgid" ]]; then rm -f "$PIDFILE"; return 0; fi
    kill -TERM -- "-$pgid" 2>/dev/null || true
    local deadline=$((SECONDS + 20))
    while kill -0 -- "-$pgid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.5; done
    if kill -0 -- "-$pgid" 2>/dev/null; then
        kill -KILL -- "-$pgid" 2>/dev/null || true
        log "killed (process group $pgid ignored SIGTERM for 20 s)"
    else
        log "stopped"
    fi
    rm -f "$PIDFILE"
}

status() {
    local pgid
    pgid="$(running_pgid)"
    if [[ -z "$pgid" ]]; then echo "mlflow   stopped"; return 0; fi
    if healthy; then echo "mlflow   running (process group $pgid)  $URL"
    else echo "mlflow   running (process group $pgid), not answering $URL/health"; fi
}

env_exports() {
    echo "export MLFLOW_TRACKING_URI='$URL'"
    # Empty: new experiments take the server's default artifact location (proxied, mlflow-artifacts:/).
    echo "export GENOFLOW_ARTIFACT_ROOT=''"
}

case "${1:-}" in
    up) up ;;
    down) down ;;
    status) status ;;
    env) env_exports ;;
    *) echo "usage: $0 up|down|status|env" >&2; exit 2 ;;
esac
