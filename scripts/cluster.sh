#!/usr/bin/env bash
# The cluster setup on one machine, all on loopback: HDFS (hadoop/hdfs.sh), a Spark standalone
# master + worker (scripts/spark-cluster.sh) and an MLflow tracking server (scripts/mlflow-server.sh).
#
#   scripts/cluster.sh up       start the three (each is idempotent), then print the settings
#   scripts/cluster.sh down     stop them (MLflow, Spark, HDFS)
#   scripts/cluster.sh status   each one's state
#   scripts/cluster.sh env      the settings that point genoflow at them, as shell exports:
#                               eval "$(scripts/cluster.sh env)"
#
# Ports, state folders and sizes: see each script's header (HDFS_RPC_PORT, SPARK_MASTER_PORT,
# MLFLOW_SERVER_PORT, ...). GENOFLOW_HDFS_ROOT (default /genoflow) is the storage root's folder.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
HDFS_ROOT="${GENOFLOW_HDFS_ROOT:-/genoflow}"

settings() {
    local hdfs_env
    hdfs_env="$("$ROOT/hadoop/hdfs.sh" env)"
    eval "$hdfs_env"
    echo "export GENOFLOW_STORAGE_ROOT='$HDFS_URI$HDFS_ROOT'"
    echo "export HADOOP_CONF_DIR='$HADOOP_CONF_DIR'   # HDFS client settings for spark-submit"
    "$ROOT/scripts/spark-cluster.sh" env | grep AIRFLOW_CONN_SPARK_DEFAULT
    "$ROOT/scripts/mlflow-server.sh" env
    echo "# DVC remote (once per project): dvc remote add -d hdfs $WEBHDFS_DVC_URL/dvc && dvc remote modify hdfs user \"\$USER\""
    echo "# the cohort under the storage root: hadoop/hdfs.sh dfs -put data/raw $HDFS_ROOT/raw"
}

case "${1:-}" in
    up)
        "$ROOT/hadoop/hdfs.sh" up
        "$ROOT/scripts/spark-cluster.sh" up
        "$ROOT/scripts/mlflow-server.sh" up
        printf '\ncluster is up; point genoflow at it with:\n  eval "$(scripts/cluster.sh env)"\n\n'
        settings
        ;;
    down)
        "$ROOT/scripts/mlflow-server.sh" down
        "$ROOT/scripts/spark-cluster.sh" down
        "$ROOT/hadoop/hdfs.sh" down
        ;;
    status)
        "$ROOT/hadoop/hdfs.sh" status || true
        "$ROOT/scripts/spark-cluster.sh" status
        "$ROOT/scripts/mlflow-server.sh" status
        ;;
    env) settings ;;
    *) echo "usage: $0 up|down|status|env" >&2; exit 2 ;;
esac
