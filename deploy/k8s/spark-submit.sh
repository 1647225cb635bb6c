#!/usr/bin/env bash
# Run one genoflow Spark job on Kubernetes: deploy/k8s/spark-submit.sh <job> [job arguments...]
#
#   K8S_API_SERVER=https://<api-server>:6443 deploy/k8s/spark-submit.sh preprocess \
#     --storage-root hdfs://namenode:8020/genoflow --dataset-version <md5> --params-json "$(cat run.json)"
#
# <job> is a file of jobs/ without .py. The command is what the DAGs' SparkSubmitOperator runs with a
# `spark_default` connection on k8s:// (README, "Run on Kubernetes"): the genoflow library zipped
# for --py-files, genoflow's Spark conf (genoflow.config.spark_conf: params.yaml's `spark:` section,
# the BGZF codec), plus the spark.kubernetes.* settings below. Settings, from the environment:
#   K8S_API_SERVER          the Kubernetes API server URL (required), e.g. https://10.0.0.1:6443
#   GENOFLOW_K8S_NAMESPACE  namespace of the executors (genoflow; needs deploy/k8s/spark/rbac.yaml)
#   GENOFLOW_SPARK_IMAGE    executor (and driver) image (genoflow/spark-k8s:0.1.0, deploy/k8s/spark/Dockerfile)
#   SPARK_DEPLOY_MODE       client (default: the driver runs here, spark-submit exits with the job's
#                           status) or cluster (the driver runs in a pod; local files are uploaded
#                           to SPARK_UPLOAD_PATH, e.g. hdfs://namenode:8020/genoflow/spark-uploads)
#   SPARK_DRIVER_HOST       client mode: the address executors reach this driver at (this pod's IP)
#   DRY_RUN=1               print the spark-submit command instead of running it
set -euo pipefail

usage="usage: $0 <job> [job arguments...]  (jobs: $(cd "$(dirname "$0")/../../jobs" && ls -- *.py | sed 's/\.py$//' | tr '\n' ' '))"
[[ $# -ge 1 ]] || { echo "$usage" >&2; exit 2; }
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
job=$1; shift
application="$repo/jobs/$job.py"
[[ -f $application ]] || { echo "$0: no job $application; $usage" >&2; exit 2; }
: "${K8S_API_SERVER:?set K8S_API_SERVER to the Kubernetes API server, e.g. https://10.0.0.1:6443}"
namespace=${GENOFLOW_K8S_NAMESPACE:-genoflow}
deploy_mode=${SPARK_DEPLOY_MODE:-client}
python=${PYTHON:-python3}

# The library zip and genoflow's own Spark conf, exactly as the DAG's operator builds them.
py_files=$("$python" -c 'from genoflow.config import Settings; from genoflow.packaging import build_py_files
print(build_py_files(Settings().state_dir / "py-files"))')
mapfile -t genoflow_conf < <("$python" -c 'from genoflow.config import Settings, load_params, spark_conf
settings = Settings()
for key, value in spark_conf(settings, load_params(settings.params_file)).items():
    print(f"--conf\n{key}={value}")')

args=(
  --master "k8s://$K8S_API_SERVER" --deploy-mode "$deploy_mode" --name "genoflow-$job"
  --conf "spark.kubernetes.namespace=$namespace"
  --conf "spark.kubernetes.container.image=${GENOFLOW_SPARK_IMAGE:-genoflow/spark-k8s:0.1.0}"
  --conf "spark.kubernetes.authenticate.driver.serviceAccountName=genoflow-spark"
  --conf "spark.kubernetes.driver.podTemplateFile=$here/spark/driver-pod-template.yaml"
  --conf "spark.kubernetes.driver.podTemplateContainerName=driver"
  --conf "spark.kubernetes.executor.podTemplateFile=$here/spark/executor-pod-template.yaml"
  --conf "spark.kubernetes.executor.podTemplateContainerName=executor"
  --conf "spark.pyspark.python=python3"                  # the image's Python (requirements.lock)
  "${genoflow_conf[@]}"
  --py-files "$py_files"
)
if [[ $deploy_mode == client ]]; then
  # Executors connect back to the driver, and are deleted with this pod when it is given by name.
  args+=(--conf "spark.driver.host=${SPARK_DRIVER_HOST:-$(hostname -i | cut -d' ' -f1)}")
  [[ -n ${SPARK_DRIVER_POD_NAME:-} ]] && args+=(--conf "spark.kubernetes.driver.pod.name=$SPARK_DRIVER_POD_NAME")
else
  args+=(--conf "spark.kubernetes.file.upload.path=${SPARK_UPLOAD_PATH:?cluster mode uploads local files: set SPARK_UPLOAD_PATH}")
fi

if [[ ${DRY_RUN:-0} == 1 ]]; then
  printf '%q ' spark-submit "${args[@]}" "$application" "$@"; echo
else
  exec spark-submit "${args[@]}" "$application" "$@"
fi
