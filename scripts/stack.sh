#!/usr/bin/env bash
# The local genoflow stack on loopback: Airflow (api-server with UI + REST, scheduler,
# dag-processor, triggerer), the MLflow UI (none when MLFLOW_TRACKING_URI names a tracking server:
# that server is the UI) and the model API.
#
#   scripts/stack.sh up       migrate Airflow's DB, start what is not running, wait for health,
#                             print the URLs and the Airflow login
#   scripts/stack.sh down     stop every process group and remove the pid files (idempotent)
#   scripts/stack.sh status   what runs, with its process group and URL
#
# The embedded default: SQLite for Airflow and MLflow, everything under the project. `make up`
# exports GENOFLOW_HOME, AIRFLOW_HOME, ...; run directly, the same defaults are derived here.
# Each service runs as its own process group (setsid); pid files and logs live in
# $GENOFLOW_HOME/.genoflow/run/. Ports: AIRFLOW_PORT (8080), MLFLOW_PORT (5000), SERVING_PORT
# (8000). Airflow settings shared with the browser test: config/airflow/local.env.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

# --- the environment the Makefile exports, for direct use --------------------------------------
DEFAULT_SPARK_CONN='{"conn_type":"spark","host":"local[*]"}'
export GENOFLOW_HOME="${GENOFLOW_HOME:-$ROOT}"
export AIRFLOW_HOME="${AIRFLOW_HOME:-$GENOFLOW_HOME/airflow_home}"
export AIRFLOW__CORE__DAGS_FOLDER="${AIRFLOW__CORE__DAGS_FOLDER:-$GENOFLOW_HOME/dags}"
export AIRFLOW__CORE__PLUGINS_FOLDER="${AIRFLOW__CORE__PLUGINS_FOLDER:-$GENOFLOW_HOME/plugins}"
export AIRFLOW__CORE__LOAD_EXAMPLES="${AIRFLOW__CORE__LOAD_EXAMPLES:-False}"
export AIRFLOW__CORE__UNIT_TEST_MODE="${AIRFLOW__CORE__UNIT_TEST_MODE:-False}"
export AIRFLOW_CONN_SPARK_DEFAULT="${AIRFLOW_CONN_SPARK_DEFAULT:-$DEFAULT_SPARK_CONN}"
export SPARK_LOCAL_IP="${SPARK_LOCAL_IP:-127.0.0.1}"
if [[ -x "$ROOT/.venv/bin/python" ]]; then
    case ":$PATH:" in *":$ROOT/.venv/bin:"*) ;; *) export PATH="$ROOT/.venv/bin:$PATH" ;; esac
    export PYSPARK_PYTHON="${PYSPARK_PYTHON:-$ROOT/.venv/bin/python}"
    export PYSPARK_DRIVER_PYTHON="${PYSPARK_DRIVER_PYTHON:-$ROOT/.venv/bin/python}"
fi

HOST=127.0.0.1
AIRFLOW_PORT="${AIRFLOW_PORT:-8080}"
MLFLOW_PORT="${MLFLOW_PORT:-5000}"
SERVING_PORT="${SERVING_PORT:-8000}"
AIRFLOW_URL="http://$HOST:$AIRFLOW_PORT"
MLFLOW_URL="http://$HOST:$MLFLOW_PORT"
# Pointed at an MLflow tracking server (`make cluster-up`: scripts/mlflow-server.sh), that server is the
# MLflow UI; no second one is started on the embedded SQLite store.
EXTERNAL_MLFLOW=no
if [[ "${MLFLOW_TRACKING_URI:-}" =~ ^https?:// ]]; then EXTERNAL_MLFLOW=yes; MLFLOW_URL="$MLFLOW_TRACKING_URI"; fi
SERVING_URL="http://$HOST:$SERVING_PORT"
TIMEOUT="${STACK_TIMEOUT:-180}"   # seconds to wait for health
RUN="$GENOFLOW_HOME/.genoflow/run"
PASSWORDS="$AIRFLOW_HOME/simple_auth_manager_passwords.json.generated"

# Shared Airflow settings; whatever the caller already exported wins.
while IFS='=' read -r key value; do
    [[ -z "$key" || "$key" == \#* ]] && continue
    [[ -n "${!key+x}" ]] || export "$key=$value"
done < "$ROOT/config/airflow/local.env"
export AIRFLOW__API__PORT="$AIRFLOW_PORT"
# Task processes (LocalExecutor) report to the execution API; Airflow's default is localhost:8080.
export AIRFLOW__CORE__EXECUTION_API_SERVER_URL="${AIRFLOW__CORE__EXECUTION_API_SERVER_URL:-$AIRFLOW_URL/execution/}"
# The model API (genoflow.serving): where to listen, and the keys clients must send (a local
# key is generated once into .genoflow/serving-api-key unless GENOFLOW_API_KEYS is set).
export GENOFLOW_SERVING_HOST="${GENOFLOW_SERVING_HOST:-$HOST}"
export GENOFLOW_SERVING_PORT="${GENOFLOW_SERVING_PORT:-$SERVING_PORT}"
# This stack's status check (/ready) and config/prometheus/prometheus.yml (/metrics) send no key.
export GENOFLOW_SERVING_PUBLIC_ROUTES="${GENOFLOW_SERVING_PUBLIC_ROUTES:-health,ready,metrics}"
API_KEY_FILE="$GENOFLOW_HOME/.genoflow/serving-api-key"

AIRFLOW_SERVICES=(api-server scheduler dag-processor triggerer)
ALL_SERVICES=(api-server scheduler dag-processor triggerer mlflow serving)

# --- services ------------------------------------------------------------------------------------
set_command() {  # sets CMD to the service's command line
    case "$1" in
        api-server)    CMD=(airflow api-server --host "$HOST" --port "$AIRFLOW_PORT") ;;
        # --skip-serve-logs: the log servers bind 0.0.0.0; the api-server reads local log files.
        scheduler)     CMD=(airflow scheduler --skip-serve-logs) ;;
        dag-processor) CMD=(airflow dag-processor) ;;
        triggerer)     CMD=(airflow triggerer --skip-serve-logs) ;;
        # No job runner (a huey consumer for GenAI scoring jobs that ignores SIGTERM): just the UI.
        mlflow)        CMD=(env MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false
                            mlflow ui --backend-store-uri "sqlite:///$GENOFLOW_HOME/.genoflow/mlflow.db"
                            --host "$HOST" --port "$MLFLOW_PORT" --workers 1) ;;
        serving)       CMD=(python -m genoflow.serving) ;;
    esac
}

url_for() {
    case "$1" in
        api-server) echo "$AIRFLOW_URL" ;;
        mlflow)     echo "$MLFLOW_URL" ;;
        serving)    echo "$SERVING_URL" ;;
        *)          echo "-" ;;
    esac
}

signature_for() {  # what a live pid file's process must be running (guards against a reused pid)
    case "$1" in
        mlflow)  echo "mlflow" ;;
        serving) echo "genoflow.serving" ;;
        *)       echo "airflow" ;;
    esac
}

log() { printf '%s\n' "$*"; }
die() { printf 'stack: %s\n' "$*" >&2; exit 1; }

running_pgid() {  # prints the process group of a running service, or nothing
    local name="$1" pidfile="$RUN/$1.pid" pid
    [[ -f "$pidfile" ]] || return 0
    pid="$(<"$pidfile")"
    [[ "$pid" =~ ^[0-9]+$ ]] || return 0
    if [[ -r "/proc/$pid/cmdline" ]]; then
        # The leader is alive: it is ours only if it still runs what we started.
        if tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "$(signature_for "$name")"; then echo "$pid"; fi
    elif kill -0 -- "-$pid" 2>/dev/null; then
        echo "$pid"  # the leader is gone but its group lives on (a pgid in use is never reused)
    fi
    return 0
}

port_busy() { (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null; }

http_ok() { curl -fsS --max-time 5 -o /dev/null "$1" 2>/dev/null; }

start() {
    local name="$1"
    if [[ -n "$(running_pgid "$name")" ]]; then
        log "  $name is already running (process group $(<"$RUN/$name.pid"))"
        return 0
    fi
    set_command "$name"
    # A background child of a non-interactive shell is no group leader, so setsid does not fork:
    # $! is the new session's and process group's id.
    (cd "$GENOFLOW_HOME" && exec setsid "${CMD[@]}" >"$RUN/$name.log" 2>&1 </dev/null) &
    echo "$!" >"$RUN/$name.pid"
    log "  $name started (process group $!, log $RUN/$name.log)"
}

check_alive() {  # fails with the log's tail if a service died
    local name
    for name in "$@"; do
        if [[ -z "$(running_pgid "$name")" ]]; then
            rm -f "$RUN/$name.pid"
            tail -n 30 "$RUN/$name.log" >&2 || true
            die "$name exited during start-up (log: $RUN/$name.log); 'make down' stops the rest"
        fi
    done
}

wait_for() {  # wait_for DESCRIPTION "SERVICES..." CHECK...
    local what="$1" services="$2" deadline=$((SECONDS + TIMEOUT))
    shift 2
    # shellcheck disable=SC2086  # word-splitting the service list is intended
    until "$@"; do
        check_alive $services
        ((SECONDS < deadline)) || die "no $what after ${TIMEOUT}s (logs: $RUN/)"
        sleep 2
    done
}

airflow_healthy() {  # the metadatabase and every Airflow component report healthy
    curl -fsS --max-time 5 "$AIRFLOW_URL/api/v2/monitor/health" 2>/dev/null | python3 -c '
import json, sys
health = json.load(sys.stdin)
parts = ("metadatabase", "scheduler", "dag_processor", "triggerer")
sys.exit(0 if all((health.get(p) or {}).get("status") == "healthy" for p in parts) else 1)'
}

serving_available() {
    [[ -d "$ROOT/src/genoflow/serving" ]] && python -c 'import genoflow.serving' >/dev/null 2>&1
}

# --- commands --------------------------------------------------------------------------------
up() {
    command -v airflow >/dev/null || die "airflow is not on PATH: run 'make install' first"
    mkdir -p "$RUN" "$AIRFLOW_HOME"
    if [[ -z "$(running_pgid api-server)" ]] && port_busy "$AIRFLOW_PORT"; then
        die "port $AIRFLOW_PORT on $HOST is taken by another process (choose one: AIRFLOW_PORT=...)"
    fi
    if [[ "$EXTERNAL_MLFLOW" == no && -z "$(running_pgid mlflow)" ]] && port_busy "$MLFLOW_PORT"; then
        die "port $MLFLOW_PORT on $HOST is taken by another process (choose one: MLFLOW_PORT=...)"
    fi

    log "airflow db migrate (log: $RUN/db-migrate.log)"
    airflow db migrate >"$RUN/db-migrate.log" 2>&1 \
        || { tail -n 20 "$RUN/db-migrate.log" >&2; die "airflow db migrate failed"; }

    log "starting services (AIRFLOW_HOME=$AIRFLOW_HOME)"
    local name
    for name in "${AIRFLOW_SERVICES[@]}"; do start "$name"; done
    if [[ "$EXTERNAL_MLFLOW" == no ]]; then start mlflow; else log "  mlflow: using the tracking server $MLFLOW_URL"; fi
    local serving=no api_key="(GENOFLOW_API_KEYS)"
    if ! serving_available; then
        log "  serving: skipped, genoflow.serving is not importable yet"
    elif [[ -z "$(running_pgid serving)" ]] && port_busy "$SERVING_PORT"; then
        log "  serving: skipped, port $SERVING_PORT is taken by another process"
    else
        if [[ -z "${GENOFLOW_API_KEYS:-}" ]]; then
            if [[ ! -s "$API_KEY_FILE" ]]; then
                (umask 077 && python3 -c 'import secrets; print(secrets.token_urlsafe(24))' >"$API_KEY_FILE")
            fi
            GENOFLOW_API_KEYS="$(<"$API_KEY_FILE")"
            export GENOFLOW_API_KEYS
            api_key="$GENOFLOW_API_KEYS (from $API_KEY_FILE)"
        fi
        start serving
        serving=yes
    fi

    log "waiting for health (up to ${TIMEOUT}s)"
    wait_for "answer from $AIRFLOW_URL/api/v2/monitor/health" "${AIRFLOW_SERVICES[*]}" \
        http_ok "$AIRFLOW_URL/api/v2/monitor/health"
    wait_for "healthy scheduler, dag-processor and triggerer" "${AIRFLOW_SERVICES[*]}" airflow_healthy
    if [[ "$EXTERNAL_MLFLOW" == no ]]; then
        wait_for "answer from $MLFLOW_URL/health" mlflow http_ok "$MLFLOW_URL/health"
    elif ! http_ok "${MLFLOW_URL%/}/health"; then
        log "  warning: the MLflow tracking server $MLFLOW_URL does not answer /health"
    fi

    local serving_state="not started"
    if [[ "$serving" == yes ]]; then
        # Tolerated: the model API may fail to start or to get ready. Before the first DAG run
        # there is no champion model to serve (/ready answers 503 until every target has one).
        serving_state="did not answer /health in 60 s (log: $RUN/serving.log)"
        local deadline=$((SECONDS + 60))
        while ((SECONDS < deadline)); do
            if [[ -z "$(running_pgid serving)" ]]; then
                rm -f "$RUN/serving.pid"
                serving_state="exited (log: $RUN/serving.log)"
                break
            fi
            if http_ok "$SERVING_URL/health"; then
                serving_state="up, API key $api_key"
                http_ok "$SERVING_URL/ready" \
                    || serving_state="$serving_state; not ready: no servable champion yet (GET /ready says why)"
                break
            fi
            sleep 2
        done
    fi

    local password="(see $PASSWORDS)"
    if [[ -f "$PASSWORDS" ]]; then
        password="$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["admin"])' "$PASSWORDS")"
    fi
    cat <<EOF

genoflow stack is up (stop it with 'make down'):
  Airflow UI + REST  $AIRFLOW_URL   login: admin / $password
  MLflow UI          $MLFLOW_URL
  model API          $SERVING_URL   $serving_state
  logs, pid files    $RUN/
EOF
}

down() {
    [[ -d "$RUN" ]] || { log "nothing to stop"; return 0; }
    # SIGTERM to every group at once (the model API and MLflow first, then Airflow from the
    # workers' side inwards), then wait for all of them together; SIGKILL what is left after 30 s.
    local name pgid
    local -A groups=()
    for name in serving mlflow triggerer dag-processor scheduler api-server; do
        pgid="$(running_pgid "$name")"
        if [[ -n "$pgid" ]]; then
            groups[$name]="$pgid"
            kill -TERM -- "-$pgid" 2>/dev/null || true
        fi
    done
    ((${#groups[@]})) || log "nothing running"
    local deadline=$((SECONDS + 30))
    while ((${#groups[@]})); do
        for name in "${!groups[@]}"; do
            if ! kill -0 -- "-${groups[$name]}" 2>/dev/null; then
                log "  $name stopped"
                unset "groups[$name]"
            elif ((SECONDS >= deadline)); then
                kill -KILL -- "-${groups[$name]}" 2>/dev/null || true
                log "  $name killed (process group ${groups[$name]} ignored SIGTERM for 30 s)"
                unset "groups[$name]"
            fi
        done
        if ((${#groups[@]})); then sleep 0.5; fi
    done
    for name in "${ALL_SERVICES[@]}"; do rm -f "$RUN/$name.pid"; done
    return 0
}

status() {
    local name pgid
    printf '%-14s %-8s %-8s %s\n' SERVICE STATE PGID URL
    for name in "${ALL_SERVICES[@]}"; do
        pgid="$(running_pgid "$name")"
        if [[ -n "$pgid" ]]; then
            printf '%-14s %-8s %-8s %s\n' "$name" running "$pgid" "$(url_for "$name")"
        elif [[ -f "$RUN/$name.pid" ]]; then
            printf '%-14s %-8s %-8s %s\n' "$name" dead - "stale pid file; log: $RUN/$name.log"
        else
            printf '%-14s %-8s %-8s %s\n' "$name" stopped - -
        fi
    done
    local health
    if health="$(curl -fsS --max-time 5 "$AIRFLOW_URL/api/v2/monitor/health" 2>/dev/null)"; then
        printf '\nAirflow health: %s\n' "$(python3 -c '
import json, sys
print(", ".join(part + " " + str((value or {}).get("status")) for part, value in json.loads(sys.argv[1]).items()))' "$health")"
    fi
}

case "${1:-}" in
    up) up ;;
    down) down ;;
    status) status ;;
    *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
