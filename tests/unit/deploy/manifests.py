"""Loading and validating the deployment files, shared by the tests of tests/unit/deploy.

Kubernetes' own kinds are checked by kubernetes-validate (the API's OpenAPI schemas,
strict: unknown fields rejected); Strimzi's and CloudNativePG's by the openAPIV3Schema of
the CRDs committed under deploy/schemas/, turned into JSON Schema by `structural`.
"""

from __future__ import annotations

import copy
import functools
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import yaml
from kubernetes_validate import utils as kv_utils
from referencing import Registry, Resource

ROOT = Path(__file__).resolve().parents[3]
K8S = ROOT / "deploy/k8s"
SCHEMAS = ROOT / "deploy/schemas"
#: The oldest Kubernetes minor still supported upstream when this was written; every
#: API used here (apps/v1, batch/v1, autoscaling/v2, policy/v1) is GA in it.
KUBERNETES_VERSION = "1.33"

CRD_FILES = (
    SCHEMAS / "strimzi/040-Crd-kafka.yaml",
    SCHEMAS / "strimzi/043-Crd-kafkatopic.yaml",
    SCHEMAS / "strimzi/04A-Crd-kafkanodepool.yaml",
    SCHEMAS / "cloudnative-pg/postgresql.cnpg.io_clusters.yaml",
)
CRD_GROUPS = ("kafka.strimzi.io", "postgresql.cnpg.io")
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")

Doc = dict[str, Any]


# libyaml when PyYAML has it: the Strimzi Kafka CRD alone is 330 KB.
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def parse_all(text: str) -> list[Doc]:
    return [d for d in yaml.load_all(text, Loader=_Loader) if d is not None]


@functools.cache
def _cached(path: Path) -> tuple[Doc, ...]:
    return tuple(parse_all(path.read_text()))


def load_all(path: Path) -> list[Doc]:
    """The documents of a YAML file, parsed once per test session (a deep copy each
    time: tests spoil documents on purpose)."""
    return copy.deepcopy(list(_cached(path.resolve())))


def manifest_files() -> list[Path]:
    """Every manifest under deploy/k8s, kustomizations and kustomize patches aside."""
    return sorted(
        p
        for p in K8S.rglob("*.yaml")
        if p.name != "kustomization.yaml" and "patches" not in p.relative_to(K8S).parts
    )


def structural(schema: Any) -> Any:
    """A CRD's OpenAPI v3 structural schema as JSON Schema, and as strict as the API
    server: it prunes unknown fields where jsonschema would accept them, so an object
    with declared properties gets `additionalProperties: false` (a typo is an error)."""
    if isinstance(schema, list):
        return [structural(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: structural(v) for k, v in schema.items()}
    if out.pop("nullable", False) and "type" in out:
        out["type"] = [out["type"], "null"]
    if out.get("x-kubernetes-int-or-string"):
        out.setdefault("anyOf", [{"type": "integer"}, {"type": "string"}])
    if (
        out.get("type") == "object"
        and "properties" in out
        and not out.get("x-kubernetes-preserve-unknown-fields")
        and "additionalProperties" not in out
    ):
        out["additionalProperties"] = False
    return out


@functools.cache
def crd_validators() -> dict[tuple[str, str], jsonschema.protocols.Validator]:
    """(apiVersion, kind) → a validator, for every *served* version of the CRDs."""
    validators: dict[tuple[str, str], jsonschema.protocols.Validator] = {}
    for path in CRD_FILES:
        for crd in load_all(path):
            group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
            for version in crd["spec"]["versions"]:
                if not version.get("served", False):
                    continue
                schema = structural(version["schema"]["openAPIV3Schema"])
                # OpenAPI 3.0 schemas use the draft-4-era keywords, all valid in draft 7.
                validators[(f"{group}/{version['name']}", kind)] = jsonschema.Draft7Validator(
                    schema
                )
    return validators


def errors(doc: Doc) -> list[str]:
    """Why a Kubernetes document is invalid (empty when valid). A kind without a schema
    is an error, never a silent pass (kubernetes-validate's CLI only warns)."""
    api_version, kind = doc.get("apiVersion", ""), doc.get("kind", "")
    name = doc.get("metadata", {}).get("name") or doc.get("metadata", {}).get("generateName")
    where = f"{kind} {name}"
    if api_version.split("/")[0] in CRD_GROUPS:
        validator = crd_validators().get((api_version, kind))
        if validator is None:
            return [f"{where}: no served CRD version for {api_version} {kind} in deploy/schemas"]
        found = [
            f"{where}: {'.'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}"
            for e in validator.iter_errors(doc)
        ]
        # CRD schemas leave metadata to the API server: check what it would.
        if not name or len(name) > 253 or not DNS_SUBDOMAIN.match(name):
            found.append(f"{where}: metadata.name is not a DNS-1123 subdomain")
        return found
    validator = kubernetes_validator(api_version, kind)
    if validator is None:
        return [f"{where}: no Kubernetes {KUBERNETES_VERSION} schema for {api_version} {kind}"]
    return [
        f"{where}: {'.'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}"
        for e in validator.iter_errors(doc)
    ]
    return []


@functools.cache
def kubernetes_validator(api_version: str, kind: str) -> jsonschema.protocols.Validator | None:
    """The validator `kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)`
    builds, built once per kind: it re-reads the ~1 MB definitions on every call, which
    made these tests several seconds slower. Same schemas, same registry, same draft."""
    version = [
        v
        for v in kv_utils.all_versions()
        if kv_utils.major_minor(v) <= kv_utils.major_minor(KUBERNETES_VERSION)
    ][-1]
    group = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    directory = f"kubernetes-json-schema/v{version}-local-strict"
    try:
        schema = kv_utils.schema_contents(
            f"{directory}/{kind.lower()}-{group}.json", KUBERNETES_VERSION
        )
    except FileNotFoundError:
        return None
    definitions = kv_utils.schema_contents(f"{directory}/_definitions.json", KUBERNETES_VERSION)
    registry = Resource.from_contents(definitions) @ (Resource.from_contents(schema) @ Registry())
    return jsonschema.Draft202012Validator(schema, registry=registry)


def pod_specs(doc: Doc) -> Iterator[Doc]:
    if doc["kind"] in ("Deployment", "Job"):
        yield doc["spec"]["template"]["spec"]


def containers(pod: Doc) -> list[Doc]:
    return [*pod.get("initContainers", []), *pod.get("containers", [])]
