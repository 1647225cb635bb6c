"""deploy/k8s: every manifest is valid Kubernetes (strict schemas, offline) and meets the policies a
cluster administrator checks before `kubectl apply -k deploy/k8s`; the API Deployment's settings and
probes match what the API reads and serves; spark-submit.sh names the templates and RBAC shipped.

No cluster is needed: kubernetes-validate bundles the API's JSON schemas. About 3 s in all.
"""

from __future__ import annotations

import copy
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from genoflow.serving.settings import ServingSettings

ROOT = Path(__file__).resolve().parents[1]
K8S = ROOT / "deploy" / "k8s"
# The oldest Kubernetes release still commonly run and the newest the validator knows: an API
# removed since, or a field not there yet, fails one of them.
K8S_VERSIONS = ("1.33.0", "1.37.0")
POD_TEMPLATES = ("spark/driver-pod-template.yaml", "spark/executor-pod-template.yaml")
SECRET_NAME = re.compile(r"KEY|SECRET|TOKEN|PASSWORD|CREDENTIAL", re.IGNORECASE)


def _manifest_files() -> list[Path]:
    return sorted(p for p in K8S.rglob("*.yaml") if p.name != "kustomization.yaml")


def _documents() -> list[tuple[str, dict]]:
    docs = []
    for path in _manifest_files():
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                docs.append((f"{path.relative_to(K8S)}:{doc['kind']}/{doc['metadata']['name']}", doc))
    return docs


DOCUMENTS = _documents()


def _of_kind(kind: str) -> list[dict]:
    return [doc for _, doc in DOCUMENTS if doc["kind"] == kind]


def _pod_specs() -> list[tuple[str, dict]]:
    """Every pod spec shipped: workload templates and the Spark pod templates."""
    specs = []
    for where, doc in DOCUMENTS:
        if doc["kind"] == "Pod":
            specs.append((where, doc["spec"]))
        elif "template" in doc.get("spec", {}):
            specs.append((where, doc["spec"]["template"]["spec"]))
    return specs


def _containers() -> list[tuple[str, dict]]:
    return [(f"{where}:{c['name']}", c) for where, spec in _pod_specs()
            for c in spec.get("initContainers", []) + spec["containers"]]


def _api() -> tuple[dict, dict]:
    """The API Deployment and its one container."""
    (deployment,) = [d for d in _of_kind("Deployment") if d["metadata"]["name"] == "genoflow-api"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return deployment, container


def _validate(doc: dict, version: str) -> None:
    kubernetes_validate.validate(doc, version, strict=True)


@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize("where", [where for where, _ in DOCUMENTS])
def test_manifest__validates_strictly(where, version):
    _validate(dict(DOCUMENTS)[where], version)


@pytest.mark.parametrize("break_it", [
    pytest.param(lambda c: c.update(livenessprobe=c.pop("livenessProbe")), id="misspelt-field"),
    pytest.param(lambda c: c["ports"][0].update(containerPort="eight thousand"), id="wrong-type"),
    pytest.param(lambda c: c.pop("name"), id="required-field-missing"),
])
def test_manifest__broken_deployment_fails_validation(break_it):
    deployment, _ = _api()
    broken = copy.deepcopy(deployment)
    break_it(broken["spec"]["template"]["spec"]["containers"][0])
    with pytest.raises(kubernetes_validate.ValidationError):
        _validate(broken, K8S_VERSIONS[-1])


def test_kustomization__applies_every_manifest_but_the_pod_templates():
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    listed = set(kustomization["resources"])
    shipped = {p.relative_to(K8S).as_posix() for p in _manifest_files()}
    assert listed == shipped - set(POD_TEMPLATES), "kustomization.yaml resources vs the manifests in deploy/k8s"
    assert kustomization["namespace"] == _of_kind("Namespace")[0]["metadata"]["name"]


@pytest.mark.parametrize("where, container", _containers(), ids=[w for w, _ in _containers()])
def test_container__has_resources_pinned_image_and_locked_down_security(where, container):
    resources = container.get("resources", {})
    assert {"cpu", "memory"} <= set(resources.get("requests", {})), f"{where}: requests cpu and memory"
    assert "memory" in resources.get("limits", {}), f"{where}: a memory limit"
    image = container["image"]
    assert re.fullmatch(r"[^:@\s]+(:[\w][\w.-]*)?(@sha256:[0-9a-f]{64})?", image), f"{where}: image {image!r}"
    assert ":" in image.split("/")[-1] and not image.endswith(":latest"), f"{where}: {image!r} needs a version tag"
    security = container.get("securityContext", {})
    assert security.get("allowPrivilegeEscalation") is False, where
    assert security.get("readOnlyRootFilesystem") is True, where
    assert security.get("capabilities", {}).get("drop") == ["ALL"], where
    assert not security.get("privileged"), where


@pytest.mark.parametrize("where, spec", _pod_specs(), ids=[w for w, _ in _pod_specs()])
def test_pod__runs_as_non_root_with_seccomp(where, spec):
    security = spec.get("securityContext", {})
    assert security.get("runAsNonRoot") is True, where
    assert security.get("runAsUser", 0) != 0, where
    assert security.get("seccompProfile", {}).get("type") == "RuntimeDefault", where
    assert not spec.get("hostNetwork") and not spec.get("hostPID"), where


def test_manifests__carry_no_literal_secret():
    assert not _of_kind("Secret"), "Secrets are created with kubectl, never committed (README)"
    for where, container in _containers():
        for env in container.get("env", []):
            if SECRET_NAME.search(env["name"]):
                assert "secretKeyRef" in env.get("valueFrom", {}), f"{where}: {env['name']} must come from a Secret"


def test_api_deployment__sets_only_variables_the_api_reads():
    """Every variable the Deployment sets is one ServingSettings.from_env reads, and its value parses."""
    _, container = _api()
    env = {e["name"]: e.get("value", "from-a-secret") for e in container["env"]}

    class Recording(dict):
        """The environment, noting every variable looked up."""

        read: set[str] = set()

        def get(self, key, default=None):
            self.read.add(key)
            return super().get(key, default)

        def __getitem__(self, key):
            self.read.add(key)
            return super().__getitem__(key)

    settings = ServingSettings.from_env(Recording(env))
    assert set(env) <= Recording.read, f"set but never read by the API: {sorted(set(env) - Recording.read)}"
    assert settings.api_keys and settings.host == "0.0.0.0"
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert settings.port == ports["http"]


def test_api_deployment__probes_use_routes_that_answer_without_a_key():
    """Probes carry no API key: the paths must exist and must not ask for one (else pods never get ready)."""
    from fastapi.testclient import TestClient

    from genoflow.serving.app import create_app
    from genoflow.serving.sources import StaticSource

    _, container = _api()
    probes = {name: container[name] for name in ("startupProbe", "livenessProbe", "readinessProbe")}
    assert {probe["httpGet"]["port"] for probe in probes.values()} == {"http"}
    app = create_app(ServingSettings(api_keys=frozenset({"a-key"}), poll_seconds=0), source=StaticSource())
    with TestClient(app) as client:
        for name, probe in probes.items():
            status = client.get(probe["httpGet"]["path"]).status_code
            # /ready is 503 until every target has a model: that is what readiness is for.
            assert status in (200, 503), f"{name} {probe['httpGet']['path']} answered {status} without a key"
    assert probes["livenessProbe"]["httpGet"]["path"] == "/health", "liveness must not depend on the registry"


def test_api_companions__select_the_api_pods_and_port():
    deployment, container = _api()
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    port = container["ports"][0]["containerPort"]
    (service,) = _of_kind("Service")
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert service["spec"]["ports"][0]["targetPort"] == container["ports"][0]["name"]
    (pdb,) = _of_kind("PodDisruptionBudget")
    assert pdb["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    (policy,) = _of_kind("NetworkPolicy")
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= pod_labels.items()
    assert [p["port"] for rule in policy["spec"]["ingress"] for p in rule["ports"]] == [port]
    (hpa,) = _of_kind("HorizontalPodAutoscaler")
    assert hpa["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    assert [m["resource"]["name"] for m in hpa["spec"]["metrics"]] == ["cpu"]
    assert hpa["spec"]["minReplicas"] > pdb["spec"]["minAvailable"], "a drain must be able to evict one pod"


def test_spark_submit__names_the_shipped_templates_and_service_account(tmp_path):
    env = {**os.environ, "DRY_RUN": "1", "K8S_API_SERVER": "https://10.0.0.1:6443", "SPARK_DRIVER_HOST": "10.1.2.3",
           "GENOFLOW_HOME": str(tmp_path), "GENOFLOW_PARAMS": str(ROOT / "params.yaml"),
           "PYTHON": sys.executable}
    done = subprocess.run(["bash", str(K8S / "spark-submit.sh"), "preprocess", "--storage-root", "hdfs://nn/g"],
                          env=env, capture_output=True, text=True, timeout=60, check=True)
    words = shlex.split(done.stdout)
    conf = dict(words[i + 1].split("=", 1) for i, word in enumerate(words) if word == "--conf")
    assert words[words.index("--master") + 1] == "k8s://https://10.0.0.1:6443"
    assert Path(words[words.index("--py-files") + 1]).name.startswith("genoflow-")
    assert words[-3:] == [str(ROOT / "jobs" / "preprocess.py"), "--storage-root", "hdfs://nn/g"]
    (account,) = _of_kind("ServiceAccount")
    assert conf["spark.kubernetes.authenticate.driver.serviceAccountName"] == account["metadata"]["name"]
    assert conf["spark.kubernetes.namespace"] == _of_kind("Namespace")[0]["metadata"]["name"]
    assert conf["spark.driver.host"] == "10.1.2.3"
    for role in ("driver", "executor"):
        template = yaml.safe_load(Path(conf[f"spark.kubernetes.{role}.podTemplateFile"]).read_text())
        names = [c["name"] for c in template["spec"]["containers"]]
        assert conf[f"spark.kubernetes.{role}.podTemplateContainerName"] in names


def test_spark_rbac__lets_the_driver_manage_executor_pods():
    (role,) = _of_kind("Role")
    (binding,) = _of_kind("RoleBinding")
    (account,) = _of_kind("ServiceAccount")
    granted = {(resource, verb) for rule in role["rules"] for resource in rule["resources"] for verb in rule["verbs"]}
    for verb in ("create", "get", "list", "watch", "delete", "deletecollection"):
        assert ("pods", verb) in granted and ("configmaps", verb) in granted, verb
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    subject = {"kind": "ServiceAccount", "name": account["metadata"]["name"], "namespace": "genoflow"}
    assert subject in binding["subjects"]
