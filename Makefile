# genoflow — two commands: `make demo` and `make test`. Everything else is here for developers.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV      := $(CURDIR)/.venv
PY        := $(VENV)/bin/python
STAMP     := $(VENV)/.installed
PATIENTS  ?= 1000
# Debian packages the tests use: a real browser for the UI test, docker-compose to validate the stack file,
# plink2, plink1.9 (--clump, absent from plink2 2.00a3.5) + bcftools + tabix as independent references for the
# genomics concordance tests; minimap2 + samtools + bcftools as the reads-to-genotypes peer (issue 15);
# Bioconductor's snpStats (R) for the public for.exercise cohort (`make public-cohort`).
SYSTEM_PACKAGES := chromium docker-compose plink2 plink1.9 bcftools tabix samtools minimap2 r-bioc-snpstats
# A real public cohort nobody here made (issue 13): snpStats' for.exercise as a genoflow study folder.
PUBLIC_COHORT   := $(CURDIR)/.genoflow/public/forexercise
# The peers of `make bench` (plink 1.9 clumps for the plink2 polygenic-score baseline).
BENCH_PACKAGES  := plink2 plink1.9 bcftools tabix samtools minimap2
# Hail runs in its own venv (it bundles its own pyspark 3.5, which cannot share ours) on Java 17.
BENCH_DIR       := $(CURDIR)/.genoflow/bench
HAIL_VENV       := $(BENCH_DIR)/hail-venv
BENCH_ARGS      ?=

# The embedded default: local Spark, local storage, SQLite for Airflow and MLflow, all under the project.
export GENOFLOW_HOME                := $(CURDIR)
export AIRFLOW_HOME                 ?= $(CURDIR)/airflow_home
export AIRFLOW__CORE__DAGS_FOLDER   := $(CURDIR)/dags
export AIRFLOW__CORE__PLUGINS_FOLDER:= $(CURDIR)/plugins
export AIRFLOW__CORE__LOAD_EXAMPLES := False
export AIRFLOW__CORE__UNIT_TEST_MODE:= False
export AIRFLOW_CONN_SPARK_DEFAULT   ?= {"conn_type":"spark","host":"local[*]"}
export PYSPARK_PYTHON               := $(PY)
export PYSPARK_DRIVER_PYTHON        := $(PY)
export PATH                         := $(VENV)/bin:$(PATH)
export SPARK_LOCAL_IP               ?= 127.0.0.1

CODEC_JAR := hadoop/bgzf-codec/target/genoflow-bgzf-codec.jar
# The driver JVM's class archive (genoflow.jvm_archive): written against this venv's Spark jars and the codec jar.
JVM_ARCHIVE := .genoflow/jvm/spark-driver.jsa

.PHONY: help install codec system-deps bench bench-biobank bench-reads bench-demo bench-deps serve up down status hdfs-up hdfs-down hdfs-status spark-up \
	spark-down spark-status mlflow-server-up mlflow-server-down cluster-up cluster-down cluster-status cluster-env \
	py-files archive demo demo-data demo-reads airflow-db test test-unit lint lock mlflow-ui clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(STAMP): requirements.lock pyproject.toml
	@command -v java >/dev/null || { echo "Java 17+ is required by Spark: apt-get install -y openjdk-17-jre-headless"; exit 1; }
	test -x $(PY) || python3.11 -m venv $(VENV) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade "pip==25.3"
	$(PY) -m pip install --quiet -r requirements.lock
	$(PY) -m pip install --quiet --no-deps -e .
	$(PY) -m pip check
	touch $(STAMP)

install: $(STAMP)  ## create .venv with the pinned dependencies

$(CODEC_JAR): hadoop/bgzf-codec/pom.xml $(wildcard hadoop/bgzf-codec/src/main/java/org/genoflow/*/*.java)
	@command -v mvn >/dev/null || { echo "Maven is needed once to build the BGZF codec: apt-get install -y maven"; exit 1; }
	mvn -q -f hadoop/bgzf-codec/pom.xml package

codec: $(CODEC_JAR)  ## build the splittable BGZF codec (Spark splits bgzip VCFs across cores with it) and JvmMath (train's driver-side CV fits)

$(JVM_ARCHIVE): $(STAMP) $(CODEC_JAR)
	$(PY) -m genoflow.jvm_archive

archive: $(JVM_ARCHIVE)  ## archive the classes a Spark driver loads (about 4 s off every job's start; ~1 min once)

# $(call apt_install,<packages>): apt-get the Debian packages that are not installed yet.
define apt_install
	@missing=$$(for p in $(1); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  sudo=$$([ "$$(id -u)" -eq 0 ] || echo sudo); \
	  echo "installing Debian packages:" $$missing; \
	  $$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq $$missing >/dev/null; \
	fi
endef

system-deps:  ## apt-get the Debian packages tests need (chromium, docker-compose, plink2, plink1.9, bcftools, tabix), if missing
	$(call apt_install,$(SYSTEM_PACKAGES))

bench-deps:  ## apt-get the benchmark peers (plink2, plink1.9, bcftools, tabix), if missing
	$(call apt_install,$(BENCH_PACKAGES))

$(HAIL_VENV)/.installed: bench/hail-requirements.txt
	test -x $(HAIL_VENV)/bin/python || python3.11 -m venv $(HAIL_VENV) || python3 -m venv $(HAIL_VENV)
	$(HAIL_VENV)/bin/python -m pip install --quiet --upgrade "pip==25.3"
	$(HAIL_VENV)/bin/python -m pip install --quiet -r bench/hail-requirements.txt
	touch $@

bench: $(STAMP) $(CODEC_JAR) $(JVM_ARCHIVE) bench-deps $(HAIL_VENV)/.installed  ## genoflow vs plink2, bcftools, Hail side by side -> BENCHMARKS.md (BENCH_ARGS=...)
	$(PY) bench/genomics.py --hail-python $(HAIL_VENV)/bin/python $(BENCH_ARGS)

bench-biobank: $(STAMP) $(CODEC_JAR) $(JVM_ARCHIVE) bench-deps  ## 100,000 patients (1 Mb of chr20) through the training DAG, per-process memory, vs plink2 -> BENCHMARKS.md (BIOBANK_ARGS=...)
	$(PY) bench/biobank.py $(BIOBANK_ARGS)

bench-reads: $(STAMP) $(CODEC_JAR) $(JVM_ARCHIVE) bench-deps  ## reads to genotypes (20 patients x 200 kb x 30x paired): align + call vs minimap2 | samtools | bcftools, F1 vs truth -> bench/results/reads.json (READS_ARGS=--growth ...)
	$(PY) bench/reads.py $(READS_ARGS)

bench-demo: $(STAMP) $(CODEC_JAR) $(JVM_ARCHIVE) data/raw bench-deps  ## the demo DAG as `make demo` runs it, every step recomputed: DAG wall, orchestration overhead, vs plink2 + scikit-learn, per-task fixed cost -> bench/results/demo_loop.json (DEMO_BENCH_ARGS=...)
	$(PY) bench/demo_loop.py $(DEMO_BENCH_ARGS)

public-cohort:  ## snpStats' for.exercise (1,000 HapMap subjects x 28,501 SNPs, 500 cases) as a study in .genoflow/public/forexercise/raw
	$(call apt_install,r-bioc-snpstats plink2 bcftools tabix)
	scripts/public-cohort.sh $(PUBLIC_COHORT)

airflow-db: $(STAMP)
	@mkdir -p $(AIRFLOW_HOME)
	airflow db migrate > $(AIRFLOW_HOME)/db-migrate.log 2>&1 || { tail -20 $(AIRFLOW_HOME)/db-migrate.log; exit 1; }

data/raw: | $(STAMP)
	genoflow demo-data --out data --patients $(PATIENTS)

demo-data: data/raw  ## simulate the demo cohort into data/ (once)

# The demo cohorts and benchmarks are simulated: their pseudonyms may use the public demo key (decision 0018).
demo demo-reads bench bench-biobank bench-reads: export GENOFLOW_ALLOW_DEMO_KEY = 1

demo: $(STAMP) $(CODEC_JAR) $(JVM_ARCHIVE) data/raw airflow-db  ## run the genomic_risk_training DAG through Airflow on the demo cohort
	@start=$$(date +%s); \
	airflow dags test genomic_risk_training > $(AIRFLOW_HOME)/demo-run.log 2>&1; rc=$$?; \
	grep -oE "(genoflow: [a-z]+ committed [^ ]+ in [0-9.]+ s|[a-z]+ is already committed for run [0-9a-f]+|genoflow report: [^ ]+|genoflow [a-z]+: error: .*|genoflow_[a-z_]+ v[0-9]+ -> [^[]*|run_duration=[0-9.]+, state=[a-z]+)" \
	  $(AIRFLOW_HOME)/demo-run.log | sed -E 's/^genoflow: //; s/ +$$//'; \
	echo "DAG run finished in $$(( $$(date +%s) - start )) s (full log: $(AIRFLOW_HOME)/demo-run.log)"; \
	test $$rc -eq 0
	genoflow summary

READS_DEMO := $(CURDIR)/data-reads

$(READS_DEMO)/raw: | $(STAMP)
	genoflow demo-data --out $(READS_DEMO) --patients 200 --sequence-length 1000000 --coverage 20 \
	  --panel-length 50000 --paired

demo-reads: $(STAMP) $(CODEC_JAR) $(JVM_ARCHIVE) $(READS_DEMO)/raw airflow-db  ## the reads path: 200 patients' FASTQs aligned and called in the DAG, then trained
	@start=$$(date +%s); \
	GENOFLOW_STORAGE_ROOT=file://$(READS_DEMO) GENOFLOW_PARAMS=$(CURDIR)/config/demo-reads.params.yaml \
	  airflow dags test genomic_risk_training > $(AIRFLOW_HOME)/demo-reads-run.log 2>&1; rc=$$?; \
	grep -oE "(genoflow: [a-z]+ committed [^ ]+ in [0-9.]+ s|genoflow [a-z]+: error: .*|genoflow_[a-z_]+ v[0-9]+ -> [^[]*|run_duration=[0-9.]+, state=[a-z]+)" \
	  $(AIRFLOW_HOME)/demo-reads-run.log | sed -E 's/^genoflow: //; s/ +$$//'; \
	echo "DAG run finished in $$(( $$(date +%s) - start )) s (full log: $(AIRFLOW_HOME)/demo-reads-run.log)"; \
	test $$rc -eq 0

test: $(STAMP) $(CODEC_JAR) $(JVM_ARCHIVE) system-deps  ## install what tests need and run the whole suite (unit + integration)
	$(VENV)/bin/ruff check src jobs dags plugins tests bench
	$(PY) -m pytest -q --durations=25  # the slowest tests, in the CI log: the suite must stay under an hour

test-unit: $(STAMP) $(CODEC_JAR)  ## fast tests only: no JVM, services, peer programs or fuzzing (marks integration, slow, fuzz); `make test` runs all
	$(PY) -m pytest -q -m "not integration and not slow and not fuzz"

lint: $(STAMP)
	$(VENV)/bin/ruff check src jobs dags plugins tests

lock:  ## re-resolve requirements.lock from pyproject.toml (needs network to PyPI)
	rm -rf /tmp/genoflow-lock && python3 -m venv /tmp/genoflow-lock
	/tmp/genoflow-lock/bin/pip install --quiet ".[test]"
	/tmp/genoflow-lock/bin/pip freeze --exclude genoflow > requirements.lock

serve: $(STAMP)  ## the model API on the registry's champions: http://127.0.0.1:8000 (X-API-Key: $$GENOFLOW_API_KEYS, default dev-key)
	GENOFLOW_API_KEYS="$${GENOFLOW_API_KEYS:-dev-key}" $(PY) -m genoflow.serving

hdfs-up:  ## a real NameNode + DataNode on loopback (Hadoop's jars via Maven): hdfs://127.0.0.1:8020
	hadoop/hdfs.sh up

hdfs-down:  ## stop the local HDFS
	hadoop/hdfs.sh down

hdfs-status:
	hadoop/hdfs.sh status

spark-up: $(STAMP)  ## a Spark standalone master + worker on loopback: spark://127.0.0.1:7077 (UI :8090)
	scripts/spark-cluster.sh up

spark-down:  ## stop the local Spark master and worker
	scripts/spark-cluster.sh down

spark-status:
	scripts/spark-cluster.sh status

mlflow-server-up: $(STAMP)  ## an MLflow tracking server (SQLite, proxied artifacts): http://127.0.0.1:5000
	scripts/mlflow-server.sh up

mlflow-server-down:
	scripts/mlflow-server.sh down

cluster-up: $(STAMP)  ## HDFS + Spark standalone + MLflow server on loopback; prints the settings to export
	scripts/cluster.sh up

cluster-down:  ## stop what cluster-up started
	scripts/cluster.sh down

cluster-status:
	scripts/cluster.sh status

cluster-env:  ## the settings for the cluster: eval "$$(make -s cluster-env)"
	@scripts/cluster.sh env

py-files: $(STAMP)  ## the library zip Spark jobs ship to executors (each job builds it anyway): .genoflow/py-files/
	$(PY) -c 'from genoflow.config import Settings; from genoflow.packaging import build_py_files; print(build_py_files(Settings().state_dir / "py-files"))'

mlflow-ui: $(STAMP)  ## browse runs and the registry (http://127.0.0.1:5000)
	mlflow ui --backend-store-uri sqlite:///$(CURDIR)/.genoflow/mlflow.db --host 127.0.0.1 --port 5000

up: $(STAMP) $(CODEC_JAR)  ## start Airflow (UI + REST :8080), MLflow UI (:5000), model API (:8000) on loopback
	@scripts/stack.sh up

down:  ## stop everything `make up` started
	@scripts/stack.sh down

status:  ## what `make up` runs
	@scripts/stack.sh status

clean:  ## remove generated data, runs and local state (keeps .venv)
	-scripts/cluster.sh down >/dev/null 2>&1
	rm -rf data/raw data/truth data/runs data/raw.dvc airflow_home .genoflow
