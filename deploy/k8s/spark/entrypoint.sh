#!/bin/bash
# Container entrypoint for Spark on Kubernetes. Spark starts its pods with the argument `driver`
# (cluster deploy mode) or `executor`, and passes everything else in environment variables
# (SPARK_DRIVER_URL, SPARK_EXECUTOR_ID, ...; Spark's "Running on Kubernetes" docs). Anything else
# runs as given, so `docker run <image> python3 -c ...` works too.
set -euo pipefail

classpath="${SPARK_CONF_DIR:-$SPARK_HOME/conf}:${HADOOP_CONF_DIR:+$HADOOP_CONF_DIR:}$SPARK_HOME/jars/*"
classpath+="${SPARK_EXTRA_CLASSPATH:+:$SPARK_EXTRA_CLASSPATH}"

case "${1:-}" in
  driver)
    shift
    exec "$SPARK_HOME/bin/spark-submit" --conf "spark.driver.bindAddress=$SPARK_DRIVER_BIND_ADDRESS" \
      --deploy-mode client "$@"
    ;;
  executor)
    # spark.executor.extraJavaOptions and friends arrive as SPARK_JAVA_OPT_0, _1, ... in order.
    java_options=()
    while IFS= read -r option; do java_options+=("$option"); done < <(
      env | grep '^SPARK_JAVA_OPT_' | sort -t_ -k4 -n | cut -d= -f2- || true)
    exec java "${java_options[@]}" -Xms"$SPARK_EXECUTOR_MEMORY" -Xmx"$SPARK_EXECUTOR_MEMORY" \
      -cp "$classpath" org.apache.spark.scheduler.cluster.k8s.KubernetesExecutorBackend \
      --driver-url "$SPARK_DRIVER_URL" --executor-id "$SPARK_EXECUTOR_ID" \
      --cores "$SPARK_EXECUTOR_CORES" --app-id "$SPARK_APPLICATION_ID" \
      --hostname "$SPARK_EXECUTOR_POD_IP" --resourceProfileId "$SPARK_RESOURCE_PROFILE_ID" \
      --podName "$SPARK_EXECUTOR_POD_NAME"
    ;;
  *)
    exec "$@"
    ;;
esac
