"""deploy/schemas: every schema file is the one PROVENANCE.md describes (its sha256),
and the CRDs serve the API versions the manifests are written for."""

from __future__ import annotations

import hashlib
import re

from tests.unit.deploy.manifests import CRD_FILES, SCHEMAS, load_all

PROVENANCE = SCHEMAS / "PROVENANCE.md"
NOT_SCHEMAS = {"PROVENANCE.md", "regenerate-strimzi.sh"}


def test_every_schema_file_is_listed_in_the_provenance_note_with_its_sha256() -> None:
    listed = dict(
        re.findall(r"^\| `([^`]+)` \| `([0-9a-f]{64})` \|$", PROVENANCE.read_text(), re.M)
    )
    files = {
        str(p.relative_to(SCHEMAS)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in SCHEMAS.rglob("*")
        if p.is_file() and p.name not in NOT_SCHEMAS
    }
    assert files == listed, "update deploy/schemas/PROVENANCE.md (file, sha256)"


def test_strimzi_crds_serve_only_v1_and_the_cnpg_cluster_v1() -> None:
    served = {
        (crd["spec"]["names"]["kind"], v["name"])
        for path in CRD_FILES
        for crd in load_all(path)
        for v in crd["spec"]["versions"]
        if v["served"]
    }
    assert served == {
        ("Kafka", "v1"),
        ("KafkaNodePool", "v1"),
        ("KafkaTopic", "v1"),
        ("Cluster", "v1"),
    }
