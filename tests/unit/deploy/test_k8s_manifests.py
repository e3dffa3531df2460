"""The Kubernetes manifests: every document valid against its schema (Kubernetes' own
kinds, and Strimzi's and CloudNativePG's CRDs from deploy/schemas), and the references
between them that no schema checks (selectors, ports, probes, ConfigMaps and Secrets,
the autoscaler's target, the Strimzi cluster label)."""

from __future__ import annotations

import ast
import copy
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.tools import require
from tests.unit.deploy.manifests import (
    K8S,
    KUBERNETES_VERSION,
    ROOT,
    Doc,
    containers,
    errors,
    load_all,
    manifest_files,
    parse_all,
    pod_specs,
)

DB_SERVICES = {
    "site-registry": "site_registry",
    "campaigns": "campaigns",
    "detection": "detection",
    "funding": "funding",
}
SERVICES = [*DB_SERVICES, "web"]
CNPG = K8S / "components/cloudnative-pg"
KUBECTL = shutil.which("kubectl")


def all_docs() -> list[Doc]:
    return [d for f in manifest_files() for d in load_all(f)]


def base_docs() -> list[Doc]:
    """The documents of `kubectl apply -k deploy/k8s`, from the kustomization's files."""
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    return [d for r in kustomization["resources"] for d in load_all(K8S / r)]


def find(docs: list[Doc], kind: str, name: str) -> Doc:
    (doc,) = [d for d in docs if d["kind"] == kind and d["metadata"].get("name") == name]
    return doc


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


# --- schemas -----------------------------------------------------------------------------


@pytest.mark.parametrize("path", manifest_files(), ids=lambda p: str(p.relative_to(K8S)))
def test_every_document_is_valid_against_its_schema(path: Path) -> None:
    docs = load_all(path)
    assert docs, f"{path} has no document"
    problems = [p for d in docs for p in errors(d)]
    assert not problems, "\n".join(problems)


def _first(kind: str) -> Doc:
    return copy.deepcopy(next(d for d in all_docs() if d["kind"] == kind))


@pytest.mark.parametrize(
    ("kind", "spoil", "expected"),
    [
        ("Deployment", lambda d: d["spec"].update(replicaz=2), "replicaz"),
        ("HorizontalPodAutoscaler", lambda d: d["spec"].update(maxReplicas="3"), "integer"),
        ("KafkaTopic", lambda d: d["spec"].update(partitions=0), "minimum"),
        ("KafkaTopic", lambda d: d["spec"].update(replica=3), "replica"),
        ("Kafka", lambda d: d["spec"]["kafka"].update(replicas=3), "replicas"),
        ("KafkaNodePool", lambda d: d["spec"].update(roles=["leader"]), "leader"),
        ("Cluster", lambda d: d["spec"].update(instances=0), "minimum"),
        ("Cluster", lambda d: d["spec"]["bootstrap"]["initdb"].update(databse="x"), "databse"),
        ("Cluster", lambda d: d["spec"].update(primaryUpdateStrategy="auto"), "auto"),
        ("Kafka", lambda d: d.update(apiVersion="kafka.strimzi.io/v1beta2"), "no served CRD"),
        ("Namespace", lambda d: d.update(kind="Namespaze"), "schema"),
    ],
)
def test_the_validation_catches_a_spoilt_document(kind: str, spoil: Any, expected: str) -> None:
    doc = _first(kind)
    assert errors(doc) == []
    spoil(doc)
    found = errors(doc)
    assert found, f"a spoilt {kind} passed"
    assert expected in " ".join(found), found


def test_a_crd_resource_needs_a_dns_name() -> None:
    doc = _first("KafkaTopic")
    doc["metadata"]["name"] = "rebond.site_registry.sites.v1"
    assert any("DNS-1123" in e for e in errors(doc))


# --- kustomize -----------------------------------------------------------------------------


def _kustomizations() -> list[Path]:
    return sorted(K8S.rglob("kustomization.yaml"))


@pytest.mark.parametrize("path", _kustomizations(), ids=lambda p: str(p.relative_to(K8S)))
def test_every_file_a_kustomization_names_exists(path: Path) -> None:
    kustomization = yaml.safe_load(path.read_text())
    named = [*kustomization.get("resources", []), *kustomization.get("components", [])]
    named += [p["path"] for p in kustomization.get("patches", []) if "path" in p]
    assert named
    for entry in named:
        assert (path.parent / entry).exists(), f"{path}: {entry} does not exist"


def test_the_base_applies_in_file_order() -> None:
    # Namespaces, then the Kafka cluster, then the topics, then the services (each
    # migration Job before its Deployment): Kustomize's default kind order would put
    # the Jobs after the Deployments.
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    assert kustomization["sortOptions"] == {"order": "fifo"}
    resources = kustomization["resources"]
    assert resources[:3] == ["namespace.yaml", "kafka-cluster.yaml", "topics.yaml"]


def test_every_manifest_is_used_by_a_kustomization_or_documented_as_on_demand() -> None:
    used = {
        (path.parent / entry).resolve()
        for path in _kustomizations()
        for entry in yaml.safe_load(path.read_text()).get("resources", [])
    }
    unused = [p.relative_to(K8S) for p in manifest_files() if p.resolve() not in used]
    assert [str(p) for p in unused] == ["ledger-rebuild-job.yaml"]


def _render(root: Path) -> list[Doc]:
    kubectl = require(KUBECTL, "kubectl (with its built-in kustomize) not on PATH")
    out = subprocess.run(
        [kubectl, "kustomize", str(root)], check=True, capture_output=True, text=True, timeout=60
    ).stdout
    return parse_all(out)


@pytest.mark.parametrize("with_cnpg", [False, True], ids=["external-db", "cloudnative-pg"])
def test_the_rendered_kustomization_is_valid(tmp_path: Path, with_cnpg: bool) -> None:
    overlay = tmp_path / "overlay"
    overlay.mkdir()
    base = Path("..", *[".."] * (len(overlay.parts) - 2), *K8S.parts[1:])
    # An overlay must repeat sortOptions: Kustomize honours only the top-level one.
    overlay_file: dict[str, Any] = {"resources": [str(base)], "sortOptions": {"order": "fifo"}}
    if with_cnpg:
        overlay_file["components"] = [str(base / "components/cloudnative-pg")]
    (overlay / "kustomization.yaml").write_text(yaml.safe_dump(overlay_file))

    docs = _render(overlay)

    problems = [p for d in docs for p in errors(d)]
    assert not problems, "\n".join(problems)
    kinds = [d["kind"] for d in docs]
    assert kinds.count("Cluster") == (4 if with_cnpg else 0)
    assert kinds.count("KafkaTopic") == 10
    # fifo order: each migration Job before its Deployment, the topics before both.
    names = [(d["kind"], d["metadata"].get("name")) for d in docs]
    for svc in DB_SERVICES:
        assert names.index(("Job", f"{svc}-migrate")) < names.index(("Deployment", svc))
        assert names.index(("KafkaTopic", "rebond.site-registry.sites.v1")) < names.index(
            ("Deployment", svc)
        )
    for doc in docs:
        if doc["kind"] in ("Deployment", "Job"):
            for container in doc["spec"]["template"]["spec"]["containers"]:
                assert container["image"] == "registry.example.invalid/rebond:0.1.0"
                env = {e["name"]: e for e in container.get("env", [])}
                if with_cnpg and doc["metadata"]["name"].removesuffix("-migrate") in DB_SERVICES:
                    (url,) = [v for k, v in env.items() if k.endswith("_DATABASE_URL")]
                    assert "-db-rw.rebond.svc:5432/" in url["value"]
                else:
                    assert not env


# --- the services' workloads -------------------------------------------------------------


@pytest.mark.parametrize("svc", SERVICES)
def test_each_service_has_its_deployment_service_autoscaler_and_disruption_budget(
    svc: str,
) -> None:
    docs = load_all(K8S / f"{svc}.yaml")
    deployment = find(docs, "Deployment", svc)
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    config = find(docs, "ConfigMap", f"{svc}-config")

    # The autoscaler owns the replica count: a `replicas` would reset it on every apply.
    assert "replicas" not in deployment["spec"]
    hpa = find(docs, "HorizontalPodAutoscaler", svc)
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": svc,
    }
    assert 2 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
    (metric,) = hpa["spec"]["metrics"]
    assert metric["resource"]["name"] == "cpu"
    if svc in ("campaigns", "detection", "funding"):
        assert hpa["spec"]["maxReplicas"] <= 3  # 3 partitions: a 4th consumer idles

    pdb = find(docs, "PodDisruptionBudget", svc)
    assert pdb["spec"]["minAvailable"] == 1
    service = find(docs, "Service", svc)
    for selector in (pdb["spec"]["selector"]["matchLabels"], service["spec"]["selector"]):
        assert selects(selector, pod_labels)
        assert selector == deployment["spec"]["selector"]["matchLabels"]
        # ...and never a Job's pods (migrations, the ledger rebuild).
        for doc in all_docs():
            if doc["kind"] == "Job":
                assert not selects(selector, doc["spec"]["template"]["metadata"]["labels"])

    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    (port,) = container["ports"]
    assert port["name"] == "http"
    prefix = config["data"]["SERVICE"].upper()
    assert str(port["containerPort"]) == config["data"][f"{prefix}_HTTP_PORT"]
    assert service["spec"]["ports"][0]["targetPort"] == "http"
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}

    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == str(port["containerPort"])
    assert annotations["prometheus.io/path"] == "/metrics"

    pause = int(container["lifecycle"]["preStop"]["exec"]["command"][1])
    # The grace period covers the preStop pause and the service's own shutdown.
    assert deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] >= pause + 20


@pytest.mark.parametrize("svc", DB_SERVICES)
def test_each_database_service_migrates_in_a_job_listed_before_its_deployment(svc: str) -> None:
    docs = load_all(K8S / f"{svc}.yaml")
    kinds = [(d["kind"], d["metadata"]["name"]) for d in docs]
    job = find(docs, "Job", f"{svc}-migrate")
    deployment = find(docs, "Deployment", svc)

    assert kinds.index(("Job", f"{svc}-migrate")) < kinds.index(("Deployment", svc))
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert container["args"] == ["migrate"]
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"
    assert "ttlSecondsAfterFinished" in job["spec"]  # the template is immutable
    (served,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["envFrom"] == served["envFrom"]  # same database, same settings
    assert "initContainers" not in deployment["spec"]["template"]["spec"]


@pytest.mark.parametrize("svc", DB_SERVICES)
def test_migrate_is_a_command_of_the_service(svc: str) -> None:
    # Read, not imported: importing the four services' stacks cost seconds.
    module = DB_SERVICES[svc]
    config = find(load_all(K8S / f"{svc}.yaml"), "ConfigMap", f"{svc}-config")
    assert config["data"]["SERVICE"] == module  # the image's entrypoint runs services.$SERVICE
    cli = ast.parse((ROOT / f"services/{module}/entrypoints/cli.py").read_text())
    calls = {
        n.func.id for n in ast.walk(cli) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)
    }
    assert "service_main" in calls  # the shared command line, which has `migrate`

    shared_cli = ast.parse((ROOT / "shared/cli.py").read_text())
    (standard,) = [
        n.value
        for n in ast.walk(shared_cli)
        if isinstance(n, ast.Assign)
        and any(isinstance(t, ast.Name) and t.id == "standard" for t in n.targets)
    ]
    assert isinstance(standard, ast.Dict)
    assert "migrate" in [k.value for k in standard.keys if isinstance(k, ast.Constant)]


def test_every_pod_runs_restricted() -> None:
    pods = [
        (d["metadata"].get("name") or d["metadata"]["generateName"], p)
        for d in all_docs()
        for p in pod_specs(d)
    ]
    assert len(pods) == 2 * len(DB_SERVICES) + 2  # Deployments, migrations, web, ledger rebuild
    for name, pod in pods:
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, name
        assert pod["automountServiceAccountToken"] is False, name
        volumes = {v["name"]: v for v in pod["volumes"]}
        for container in containers(pod):
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True, name
            assert context["allowPrivilegeEscalation"] is False, name
            assert context["capabilities"] == {"drop": ["ALL"]}, name
            (tmp,) = [m for m in container["volumeMounts"] if m["mountPath"] == "/tmp"]
            assert "emptyDir" in volumes[tmp["name"]], name
            resources = container["resources"]
            assert {"cpu", "memory"} <= resources["requests"].keys() & resources["limits"].keys()


def test_every_configmap_and_secret_a_pod_reads_exists() -> None:
    docs = all_docs()
    present = {(d["kind"], d["metadata"].get("name")) for d in docs}
    cnpg_secrets = {f"{d['metadata']['name']}-app" for d in docs if d["kind"] == "Cluster"}
    patches = [d for p in sorted((CNPG / "patches").glob("*.yaml")) for d in load_all(p)]
    pods = [p for d in docs for p in pod_specs(d)]
    pods += [d["spec"]["template"]["spec"] for d in patches]
    checked = 0
    for pod in pods:
        for container in pod["containers"]:
            for source in container.get("envFrom", []):
                if "configMapRef" in source:
                    assert ("ConfigMap", source["configMapRef"]["name"]) in present
                else:
                    assert ("Secret", source["secretRef"]["name"]) in present
                assert (
                    source.get("configMapRef", source.get("secretRef", {})).get("optional")
                    is not True
                )
                checked += 1
            for env in container.get("env", []):
                if "valueFrom" in env:
                    # The Secrets CloudNativePG creates for each Cluster (<cluster>-app).
                    assert env["valueFrom"]["secretKeyRef"]["name"] in cnpg_secrets
                    assert env["valueFrom"]["secretKeyRef"]["key"] in ("username", "password")
                    checked += 1
    assert checked > 20


def test_the_kafka_cluster_and_its_topics_belong_together() -> None:
    docs = base_docs()
    (kafka,) = [d for d in docs if d["kind"] == "Kafka"]
    pools = [d for d in docs if d["kind"] == "KafkaNodePool"]
    topics = [d for d in docs if d["kind"] == "KafkaTopic"]
    name, namespace = kafka["metadata"]["name"], kafka["metadata"]["namespace"]

    for doc in [*pools, *topics]:
        assert doc["metadata"]["labels"]["strimzi.io/cluster"] == name
        assert doc["metadata"]["namespace"] == namespace
    roles = {r for p in pools for r in p["spec"]["roles"]}
    assert roles == {"controller", "broker"}  # KRaft: no ZooKeeper, the pools hold both
    brokers = sum(p["spec"]["replicas"] for p in pools if "broker" in p["spec"]["roles"])
    config = kafka["spec"]["kafka"]["config"]
    for topic in topics:
        assert topic["spec"]["replicas"] <= brokers
        assert topic["spec"]["config"]["min.insync.replicas"] < topic["spec"]["replicas"]
    assert (
        config["transaction.state.log.min.isr"] < config["transaction.state.log.replication.factor"]
    )
    assert config["auto.create.topics.enable"] is False

    (plain,) = [li for li in kafka["spec"]["kafka"]["listeners"] if li["name"] == "plain"]
    bootstrap = f"{name}-kafka-bootstrap.{namespace}:{plain['port']}"
    for svc in DB_SERVICES:
        config_map = find(load_all(K8S / f"{svc}.yaml"), "ConfigMap", f"{svc}-config")
        assert config_map["data"]["KAFKA_BOOTSTRAP_SERVERS"] == bootstrap


def test_cloudnative_pg_gives_each_service_its_own_cluster_and_database() -> None:
    clusters = {d["metadata"]["name"]: d for d in load_all(CNPG / "clusters.yaml")}
    assert set(clusters) == {f"{svc}-db" for svc in DB_SERVICES}
    for svc, database in DB_SERVICES.items():
        initdb = clusters[f"{svc}-db"]["spec"]["bootstrap"]["initdb"]
        assert initdb["database"] == initdb["owner"] == database
        patches = load_all(CNPG / "patches" / f"{svc}.yaml")
        assert {(d["kind"], d["metadata"]["name"]) for d in patches} == {
            ("Deployment", svc),
            ("Job", f"{svc}-migrate"),
        }
        for patch in patches:
            (container,) = patch["spec"]["template"]["spec"]["containers"]
            env = {e["name"]: e for e in container["env"]}
            url = env[f"{database.upper()}_DATABASE_URL"]["value"]
            assert re.fullmatch(
                rf"postgresql\+asyncpg://\$\(CNPG_APP_USERNAME\):\$\(CNPG_APP_PASSWORD\)"
                rf"@{svc}-db-rw\.rebond\.svc:5432/{database}",
                url,
            ), url
            # $(VAR) expands only variables defined earlier in the list.
            names = [e["name"] for e in container["env"]]
            assert names.index("CNPG_APP_PASSWORD") < names.index(
                f"{database.upper()}_DATABASE_URL"
            )
        # The patched container names exist in the base (a typo would add a container).
        base = load_all(K8S / f"{svc}.yaml")
        assert [
            c["name"]
            for c in find(base, "Deployment", svc)["spec"]["template"]["spec"]["containers"]
        ] == [svc]
        assert [
            c["name"]
            for c in find(base, "Job", f"{svc}-migrate")["spec"]["template"]["spec"]["containers"]
        ] == ["migrate"]


def test_the_cached_validator_agrees_with_kubernetes_validate() -> None:
    import kubernetes_validate

    for kind in ("Deployment", "Job", "HorizontalPodAutoscaler", "PodDisruptionBudget"):
        good = _first(kind)
        bad = copy.deepcopy(good)
        bad["spec"]["bogus"] = 1
        kubernetes_validate.validate(good, KUBERNETES_VERSION, strict=True)
        with pytest.raises(kubernetes_validate.ValidationError):
            kubernetes_validate.validate(bad, KUBERNETES_VERSION, strict=True)
        assert errors(good) == []
        assert any("bogus" in e for e in errors(bad))
