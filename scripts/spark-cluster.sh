#!/usr/bin/env bash
# A Spark standalone cluster on loopback: one master + one worker, from the pyspark package itself.
#
#   scripts/spark-cluster.sh up       start master and worker, wait until the worker is ALIVE
#   scripts/spark-cluster.sh down     stop worker then master (idempotent)
#   scripts/spark-cluster.sh status   daemons, alive workers, running and completed applications
#   scripts/spark-cluster.sh env      the cluster's settings as shell exports (eval "$(... env)")
#
# pyspark ships sbin/spark-daemon.sh but not start-master.sh / start-worker.sh; SPARK_HOME is the
# installed pyspark package. Every file the daemons write (pid files, logs, executors' work
# folders) lives under SPARK_STATE_DIR, never inside site-packages, so several clusters (one per
# test session) can run side by side with different ports and state folders.
#
# Environment (defaults):
#   GENOFLOW_HOME            repo root (the folder above this script)
#   SPARK_STATE_DIR          $GENOFLOW_HOME/.genoflow/spark   (logs/, pids/, work/)
#   SPARK_MASTER_HOST        127.0.0.1
#   SPARK_MASTER_PORT        7077    -> spark://127.0.0.1:7077 (the same port as docker-compose)
#   SPARK_MASTER_WEBUI_PORT  8090    master UI; its status JSON at /json/
#   SPARK_WORKER_WEBUI_PORT  8091
#   SPARK_WORKER_CORES       2
#   SPARK_WORKER_MEMORY      2g      what the worker offers executors (spark.executor.memory is 1g)
#   SPARK_DAEMON_MEMORY      512m    heap of the master and worker JVMs themselves
#   SPARK_UP_TIMEOUT         90      seconds to wait for an ALIVE worker
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
GENOFLOW_HOME="${GENOFLOW_HOME:-$ROOT}"
STATE="${SPARK_STATE_DIR:-$GENOFLOW_HOME/.genoflow/spark}"
HOST="${SPARK_MASTER_HOST:-127.0.0.1}"
MASTER_PORT="${SPARK_MASTER_PORT:-7077}"
MASTER_UI_PORT="${SPARK_MASTER_WEBUI_PORT:-8090}"
WORKER_UI_PORT="${SPARK_WORKER_WEBUI_PORT:-8091}"
CORES="${SPARK_WORKER_CORES:-2}"
MEMORY="${SPARK_WORKER_MEMORY:-2g}"
UP_TIMEOUT="${SPARK_UP_TIMEOUT:-90}"
MASTER_URL="spark://$HOST:$MASTER_PORT"
MASTER_UI="http://$HOST:$MASTER_UI_PORT"

MASTER_CLASS=org.apache.spark.deploy.master.Master
WORKER_CLASS=org.apache.spark.deploy.worker.Worker

log() { echo "[spark] $*" >&2; }
die() { echo "[spark] ERROR: $*" >&2; exit 1; }

if [[ -x "$ROOT/.venv/bin/python" ]]; then PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"; else PYTHON="${PYTHON:-python3}"; fi

daemon() {  # daemon start|stop CLASS [args...]: spark-daemon.sh with this cluster's state folders
    local spark_home
    spark_home="$("$PYTHON" -c 'import os, pyspark; print(os.path.dirname(pyspark.__file__))')" \
        || die "pyspark is not importable by $PYTHON (run 'make install')"
    # The daemons (and so the executors they launch) get a clean environment: no PYTHONPATH of the
    # caller, so executors import genoflow only from what spark-submit ships (--py-files).
    env -u PYTHONPATH \
        SPARK_HOME="$spark_home" SPARK_CONF_DIR="$STATE/conf" SPARK_LOCAL_IP="$HOST" \
        SPARK_LOG_DIR="$STATE/logs" SPARK_PID_DIR="$STATE/pids" SPARK_WORKER_DIR="$STATE/work" \
        SPARK_IDENT_STRING=genoflow SPARK_DAEMON_MEMORY="${SPARK_DAEMON_MEMORY:-512m}" \
        "$spark_home/sbin/spark-daemon.sh" "$@"
}

pid_of() {  # the pid of a running daemon, or nothing
    local file="$STATE/pids/spark-genoflow-$1-1.pid" pid
    [[ -f "$file" ]] || return 0
    pid="$(<"$file")"
    if [[ -r "/proc/$pid/cmdline" ]] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "$1"; then echo "$pid"; fi
    return 0
}

master_json() { curl -fsS --max-time 5 "$MASTER_UI/json/" 2>/dev/null; }

alive_workers() {  # number of ALIVE workers the master knows, or nothing when it does not answer
    master_json | "$PYTHON" -c 'import json, sys; print(json.load(sys.stdin).get("aliveworkers", 0))' 2>/dev/null || true
}

port_busy() { (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null; }

up() {
    command -v java >/dev/null || die "java not found (Spark needs Java 17+)"
    mkdir -p "$STATE/conf" "$STATE/logs" "$STATE/pids" "$STATE/work"
    if [[ -z "$(pid_of "$MASTER_CLASS")" ]]; then
        local port
        for port in "$MASTER_PORT" "$MASTER_UI_PORT" "$WORKER_UI_PORT"; do
            ! port_busy "$port" || die "port $port on $HOST is taken (choose others: SPARK_MASTER_PORT, SPARK_MASTER_WEBUI_PORT, SPARK_WORKER_WEBUI_PORT)"
        done
        daemon start "$MASTER_CLASS" 1 --host "$HOST" --port "$MASTER_PORT" --webui-port "$MASTER_UI_PORT" >/dev/null
        log "master started: $MASTER_URL (UI $MASTER_UI)"
    else
        log "master already running (pid $(pid_of "$MASTER_CLASS"))"
    fi
    if [[ -z "$(pid_of "$WORKER_CLASS")" ]]; then
        daemon start "$WORKER_CLASS" 1 --host "$HOST" --webui-port "$WORKER_UI_PORT" \
            --cores "$CORES" --memory "$MEMORY" --work-dir "$STATE/work" "$MASTER_URL" >/dev/null
        log "worker started: $CORES cores, $MEMORY"
    else
        log "worker already running (pid $(pid_of "$WORKER_CLASS"))"
    fi
    log "waiting (up to ${UP_TIMEOUT}s) for the worker to register"
    local deadline=$((SECONDS + UP_TIMEOUT)) alive
    while :; do
        alive="$(alive_workers)"
        [[ "$alive" =~ ^[0-9]+$ && "$alive" -ge 1 ]] && break
        [[ -n "$(pid_of "$MASTER_CLASS")" ]] || { tail -n 30 "$STATE"/logs/*Master*.out >&2 || true; die "the master exited"; }
        [[ -n "$(pid_of "$WORKER_CLASS")" ]] || { tail -n 30 "$STATE"/logs/*Worker*.out >&2 || true; die "the worker exited"; }
        ((SECONDS < deadline)) || die "no ALIVE worker after ${UP_TIMEOUT}s; logs in $STATE/logs"
        sleep 1
    done
    log "up: $MASTER_URL with $alive worker(s); logs in $STATE/logs"
}

down() {
    # spark-daemon.sh stop sends SIGTERM and returns at once: wait for the JVM, SIGKILL after 20 s.
    local cls pid deadline
    for cls in "$WORKER_CLASS" "$MASTER_CLASS"; do
        pid="$(pid_of "$cls")"
        [[ -n "$pid" ]] || continue
        daemon stop "$cls" 1 >/dev/null 2>&1 || kill -TERM "$pid" 2>/dev/null || true
        deadline=$((SECONDS + 20))
        while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.5; done
        if kill -0 "$pid" 2>/dev/null; then
            kill -KILL "$pid" 2>/dev/null || true
            log "killed ${cls##*.} (pid $pid ignored SIGTERM for 20 s)"
        else
            log "stopped ${cls##*.}"
        fi
        rm -f "$STATE/pids/spark-genoflow-$cls-1.pid"
    done
    return 0
}

status() {
    local cls pid
    for cls in "$MASTER_CLASS" "$WORKER_CLASS"; do
        pid="$(pid_of "$cls")"
        if [[ -n "$pid" ]]; then printf '%-8s running (pid %s)\n' "${cls##*.}" "$pid"
        else printf '%-8s stopped\n' "${cls##*.}"; fi
    done
    master_json | "$PYTHON" -c '
import json, sys
s = json.load(sys.stdin)
print("master  ", s["url"], s["status"], "| alive workers", s["aliveworkers"], "| cores", s["cores"])
print("apps    ", len(s["activeapps"]), "running,", len(s["completedapps"]), "completed")' 2>/dev/null || true
}

env_exports() {
    echo "export AIRFLOW_CONN_SPARK_DEFAULT='$MASTER_URL'"
    echo "export SPARK_MASTER_UI='$MASTER_UI'"
}

case "${1:-}" in
    up) up ;;
    down) down ;;
    status) status ;;
    env) env_exports ;;
    *) echo "usage: $0 up|down|status|env" >&2; exit 2 ;;
esac
