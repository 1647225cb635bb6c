#!/usr/bin/env bash
# Real Apache Hadoop HDFS (one NameNode + one DataNode) on loopback, from Hadoop's own jars.
#
#   hadoop/hdfs.sh up        fetch jars (first time), write config, format (first time), start, wait
#   hadoop/hdfs.sh down      stop DataNode then NameNode (SIGTERM, then SIGKILL after a grace period)
#   hadoop/hdfs.sh status    pids + live DataNodes + safe mode
#   hadoop/hdfs.sh fetch     only fetch the jars
#   hadoop/hdfs.sh env       print the URIs as shell exports
#   hadoop/hdfs.sh dfsadmin ARGS...   Hadoop's DFSAdmin against this NameNode (e.g. -safemode enter|leave|get)
#   hadoop/hdfs.sh dfs ARGS...        Hadoop's FsShell against this NameNode (e.g. -ls -R /)
#
# No HADOOP_HOME install: the jars come from Maven Central via hadoop/pom.xml into
# $HADOOP_LIB (default <repo>/.genoflow/hadoop/lib). Native-library warnings on Linux are harmless.
#
# Environment (defaults):
#   GENOFLOW_HOME     repo root (the folder above this script)
#   HDFS_STATE_DIR    $GENOFLOW_HOME/.genoflow/hdfs   (conf/, name/, data/, logs/, pids/)
#   HADOOP_LIB        $GENOFLOW_HOME/.genoflow/hadoop/lib
#   HDFS_HOST         127.0.0.1
#   HDFS_RPC_PORT     8020   NameNode RPC   -> hdfs://127.0.0.1:8020 (same port as docker-compose)
#   HDFS_HTTP_PORT    9870   NameNode HTTP  -> WebHDFS http://127.0.0.1:9870/webhdfs/v1
#   HDFS_DN_PORT      0      DataNode data transfer (0 = ephemeral)
#   HDFS_DN_HTTP_PORT 0      DataNode HTTP (WebHDFS redirects here; 0 = ephemeral)
#   HDFS_DN_IPC_PORT  0      DataNode IPC
#   HDFS_HEAP         512m   -Xmx for each daemon
#   HDFS_UP_TIMEOUT   120    seconds to wait for a live DataNode and safe mode off
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
GENOFLOW_HOME="${GENOFLOW_HOME:-$(cd "$SCRIPT_DIR/.." && pwd)}"
STATE="${HDFS_STATE_DIR:-$GENOFLOW_HOME/.genoflow/hdfs}"
LIB="${HADOOP_LIB:-$GENOFLOW_HOME/.genoflow/hadoop/lib}"
HOST="${HDFS_HOST:-127.0.0.1}"
RPC_PORT="${HDFS_RPC_PORT:-8020}"
HTTP_PORT="${HDFS_HTTP_PORT:-9870}"
DN_PORT="${HDFS_DN_PORT:-0}"
DN_HTTP_PORT="${HDFS_DN_HTTP_PORT:-0}"
DN_IPC_PORT="${HDFS_DN_IPC_PORT:-0}"
HEAP="${HDFS_HEAP:-512m}"
UP_TIMEOUT="${HDFS_UP_TIMEOUT:-120}"

CONF="$STATE/conf"
LOGS="$STATE/logs"
PIDS="$STATE/pids"
JAVA="${JAVA:-java}"

NN_CLASS=org.apache.hadoop.hdfs.server.namenode.NameNode
DN_CLASS=org.apache.hadoop.hdfs.server.datanode.DataNode

log() { echo "[hdfs] $*" >&2; }
die() { echo "[hdfs] ERROR: $*" >&2; exit 1; }

# Java 17: Hadoop 3.5.0's NameNode/DataNode ran here without any --add-opens (checked: start-up,
# WebHDFS, Spark Parquet write/read). They are kept as a safety margin for less-travelled code
# paths that use reflection into java.base; HDFS_ADD_OPENS=0 drops them.
JAVA17_OPENS=(
  --add-opens=java.base/java.lang=ALL-UNNAMED
  --add-opens=java.base/java.lang.reflect=ALL-UNNAMED
  --add-opens=java.base/java.io=ALL-UNNAMED
  --add-opens=java.base/java.net=ALL-UNNAMED
  --add-opens=java.base/java.nio=ALL-UNNAMED
  --add-opens=java.base/java.util=ALL-UNNAMED
  --add-opens=java.base/java.util.concurrent=ALL-UNNAMED
  --add-opens=java.base/sun.nio.ch=ALL-UNNAMED
  --add-opens=java.base/sun.security.x509=ALL-UNNAMED
)
[[ "${HDFS_ADD_OPENS:-1}" == 0 ]] && JAVA17_OPENS=(-Dgenoflow.hdfs.no-add-opens=true)

fetch() {
  if compgen -G "$LIB/hadoop-hdfs-[0-9]*.jar" >/dev/null; then
    return 0
  fi
  command -v mvn >/dev/null || die "mvn not found (needed once to fetch Hadoop's jars)"
  log "fetching Hadoop jars with Maven into $LIB (first time only)"
  mkdir -p "$LIB"
  mvn -q -f "$SCRIPT_DIR/pom.xml" dependency:copy-dependencies -DoutputDirectory="$LIB" \
    || die "maven fetch failed"
}

xml_prop() { printf '  <property><name>%s</name><value>%s</value></property>\n' "$1" "$2"; }

write_conf() {
  mkdir -p "$CONF" "$LOGS" "$PIDS" "$STATE/name" "$STATE/data" "$STATE/tmp"
  # HttpServer2 looks up webapps/<name> on the classpath; the Maven jars do not ship the web UI
  # (only the binary tarball does). Empty folders are enough for WebHDFS, JMX and /conf.
  local w
  for w in hdfs datanode secondary; do
    mkdir -p "$CONF/webapps/$w"
    [[ -f "$CONF/webapps/$w/index.html" ]] || echo "<html><body>genoflow HDFS ($w): no web UI; use /webhdfs/v1 and /jmx</body></html>" > "$CONF/webapps/$w/index.html"
  done
  {
    echo '<?xml version="1.0"?>'
    echo '<configuration>'
    xml_prop fs.defaultFS "hdfs://$HOST:$RPC_PORT"
    xml_prop hadoop.tmp.dir "$STATE/tmp"
    xml_prop hadoop.security.authentication simple
    # Any client user may act as any user on loopback (Spark/Airflow as root or not).
    xml_prop hadoop.proxyuser.root.hosts '*'
    xml_prop hadoop.proxyuser.root.groups '*'
    xml_prop hadoop.http.staticuser.user "${USER:-root}"
    echo '</configuration>'
  } > "$CONF/core-site.xml"
  {
    echo '<?xml version="1.0"?>'
    echo '<configuration>'
    xml_prop dfs.replication 1
    xml_prop dfs.permissions.enabled false
    xml_prop dfs.namenode.name.dir "file://$STATE/name"
    xml_prop dfs.datanode.data.dir "file://$STATE/data"
    xml_prop dfs.namenode.rpc-address "$HOST:$RPC_PORT"
    xml_prop dfs.namenode.http-address "$HOST:$HTTP_PORT"
    xml_prop dfs.namenode.secondary.http-address "$HOST:0"
    xml_prop dfs.datanode.address "$HOST:$DN_PORT"
    xml_prop dfs.datanode.http.address "$HOST:$DN_HTTP_PORT"
    xml_prop dfs.datanode.ipc.address "$HOST:$DN_IPC_PORT"
    xml_prop dfs.datanode.hostname "$HOST"
    xml_prop dfs.namenode.datanode.registration.ip-hostname-check false
    xml_prop dfs.webhdfs.enabled true
    # One DataNode: never try to replace a failed pipeline node (there is none to add).
    xml_prop dfs.client.block.write.replace-datanode-on-failure.enable false
    # Small, quick local instance.
    xml_prop dfs.namenode.safemode.extension 0
    xml_prop dfs.heartbeat.interval 1
    xml_prop dfs.namenode.handler.count 5
    xml_prop dfs.datanode.handler.count 3
    xml_prop dfs.datanode.du.reserved 0
    # Clients (FsShell, Spark, the DataNode's WebHDFS writer) close each file by polling the NameNode
    # until the DataNode's block report is in, first after 400 ms. On loopback the report takes
    # milliseconds: 400 ms a file made a 1,000-file cohort upload take minutes instead of seconds.
    xml_prop dfs.client.block.write.locateFollowingBlock.initial.delay.ms 10
    echo '</configuration>'
  } > "$CONF/hdfs-site.xml"
  cat > "$CONF/log4j.properties" <<'EOF'
log4j.rootLogger=INFO,console
log4j.appender.console=org.apache.log4j.ConsoleAppender
log4j.appender.console.target=System.err
log4j.appender.console.layout=org.apache.log4j.PatternLayout
log4j.appender.console.layout.ConversionPattern=%d{ISO8601} %p %c{2}: %m%n
log4j.logger.org.apache.hadoop.util.NativeCodeLoader=ERROR
log4j.logger.org.apache.hadoop.hdfs.StateChange=WARN
log4j.logger.BlockStateChange=WARN
log4j.logger.org.apache.hadoop.hdfs.server.namenode.FSNamesystem.audit=WARN
EOF
}

java_cmd() {
  # $1 = log name; rest = class + args
  local name="$1"; shift
  exec_java=("$JAVA" -Xmx"$HEAP" "${JAVA17_OPENS[@]}" \
    -Djava.net.preferIPv4Stack=true \
    -Dhadoop.home.dir="$STATE" -Dhadoop.log.dir="$LOGS" -Dhadoop.log.file="$name.log" \
    -Dhadoop.id.str="${USER:-root}" -Dlog4j.configuration="file:$CONF/log4j.properties" \
    -cp "$CONF:$LIB/*" "$@")
}

pid_alive() { local f="$PIDS/$1.pid"; [[ -f "$f" ]] && kill -0 "$(cat "$f")" 2>/dev/null; }

start_daemon() {
  local name="$1" cls="$2"
  if pid_alive "$name"; then log "$name already running (pid $(cat "$PIDS/$name.pid"))"; return 0; fi
  # setsid: own process group, survives the caller's shell; stdout+stderr to the log.
  java_cmd "$name" "$cls"
  setsid "${exec_java[@]}" > "$LOGS/$name.out" 2>&1 < /dev/null &
  echo $! > "$PIDS/$name.pid"
  log "started $name (pid $!), log $LOGS/$name.out"
}

jmx() { curl -sf --max-time 3 "http://$HOST:$HTTP_PORT/jmx?qry=$1" 2>/dev/null || true; }

# prints "<live datanodes> <safemode string>" (safemode empty when off)
nn_state() {
  local state ns
  state="$(jmx 'Hadoop:service=NameNode,name=FSNamesystemState')"
  ns="$(jmx 'Hadoop:service=NameNode,name=NameNodeInfo')"
  local live safemode
  live="$(printf '%s' "$state" | grep -o '"NumLiveDataNodes" *: *[0-9]*' | grep -o '[0-9]*$' || true)"
  safemode="$(printf '%s' "$ns" | grep -o '"Safemode" *: *"[^"]*"' | sed 's/.*: *"//; s/"$//' || true)"
  printf '%s|%s' "${live:-?}" "$safemode"
}

up() {
  command -v "$JAVA" >/dev/null || die "java not found"
  local t0=$SECONDS
  fetch
  write_conf
  if [[ ! -f "$STATE/name/current/VERSION" ]]; then
    log "formatting NameNode in $STATE/name"
    java_cmd format "$NN_CLASS" -format -nonInteractive -clusterId genoflow-local
    "${exec_java[@]}" > "$LOGS/format.out" 2>&1 \
      || { tail -20 "$LOGS/format.out" >&2; die "NameNode format failed (log $LOGS/format.out)"; }
  fi
  local t1=$SECONDS
  start_daemon namenode "$NN_CLASS"
  start_daemon datanode "$DN_CLASS"
  log "waiting (up to ${UP_TIMEOUT}s) for a live DataNode and safe mode off"
  local deadline=$((SECONDS + UP_TIMEOUT)) s live sm
  while :; do
    s="$(nn_state)"; live="${s%%|*}"; sm="${s#*|}"
    if [[ "$live" =~ ^[0-9]+$ && "$live" -ge 1 && -n "$(jmx 'Hadoop:service=NameNode,name=NameNodeInfo')" && -z "$sm" ]]; then
      break
    fi
    pid_alive namenode || { tail -30 "$LOGS/namenode.out" >&2; die "NameNode exited"; }
    pid_alive datanode || { tail -30 "$LOGS/datanode.out" >&2; die "DataNode exited"; }
    (( SECONDS < deadline )) || die "timed out (live DataNodes: $live, safe mode: ${sm:-off}); logs in $LOGS"
    sleep 1
  done
  log "HDFS up: fetch+config+format $((t1 - t0))s, daemons to safe-mode-off $((SECONDS - t1))s, live DataNodes: $live"
  print_env
}

stop_daemon() {
  local name="$1" f="$PIDS/$1.pid" pid i
  [[ -f "$f" ]] || { log "$name not running"; return 0; }
  pid="$(cat "$f")"
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    if kill -0 "$pid" 2>/dev/null; then
      log "$name did not stop in 15s; SIGKILL"
      kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
    fi
    log "stopped $name (pid $pid)"
  else
    log "$name not running (stale pid file)"
  fi
  rm -f "$f"
}

down() {
  stop_daemon datanode
  stop_daemon namenode
}

status() {
  local name rc=0
  for name in namenode datanode; do
    if pid_alive "$name"; then echo "$name: running (pid $(cat "$PIDS/$name.pid"))"; else echo "$name: stopped"; rc=1; fi
  done
  if pid_alive namenode; then
    local s; s="$(nn_state)"
    echo "live datanodes: ${s%%|*}"
    echo "safe mode: $( [[ -n "${s#*|}" ]] && echo "ON (${s#*|})" || echo off )"
    print_env
  fi
  return $rc
}

print_env() {
  cat <<EOF
export HDFS_URI=hdfs://$HOST:$RPC_PORT
export WEBHDFS_URI=http://$HOST:$HTTP_PORT
export WEBHDFS_DVC_URL=webhdfs://$HOST:$HTTP_PORT
export HADOOP_CONF_DIR=$CONF
EOF
}

# Hadoop's own client tools with this instance's configuration (written by `up`).
client_tool() {
  local cls="$1"; shift
  [[ -f "$CONF/core-site.xml" ]] || die "no configuration in $CONF: run '$0 up' first"
  fetch
  java_cmd client "$cls"
  # Client log lines (INFO) go to stderr via log4j; tool output goes to stdout.
  "${exec_java[@]}" -fs "hdfs://$HOST:$RPC_PORT" "$@"
}

case "${1:-}" in
  up) up ;;
  dfsadmin) shift; client_tool org.apache.hadoop.hdfs.tools.DFSAdmin "$@" ;;
  dfs) shift; client_tool org.apache.hadoop.fs.FsShell "$@" ;;
  down) down ;;
  status) status ;;
  fetch) fetch ;;
  env) print_env ;;
  *) echo "usage: $0 up|down|status|fetch|env|dfsadmin ARGS|dfs ARGS" >&2; exit 2 ;;
esac
