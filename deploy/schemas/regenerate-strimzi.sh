#!/usr/bin/env bash
# Regenerates deploy/schemas/strimzi/*.yaml: the CRDs of Strimzi's Kafka, KafkaNodePool
# and KafkaTopic, produced by Strimzi's own CRD generator from its published API classes
# (Maven Central), the way upstream produces packaging/install/cluster-operator/04*-Crd-*.yaml.
# A maintainer step, never run by the tests or CI (they read the committed files).
#
#   JAVA=/usr/lib/jvm/temurin-25-jdk-amd64/bin/java bash deploy/schemas/regenerate-strimzi.sh
#
# Needs Maven and Java >= 21 (the 1.2.0 classes are class file version 65). Then update
# the sha256 sums in deploy/schemas/PROVENANCE.md and tests/unit/deploy/test_schemas_provenance.py.
set -euo pipefail
STRIMZI_VERSION="${STRIMZI_VERSION:-1.2.0}"
JAVA="${JAVA:-java}"
OUT="$(cd "$(dirname "$0")" && pwd)/strimzi"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
cat > "$WORK/pom.xml" <<POM
<project xmlns="http://maven.apache.org/POM/4.0.0"><modelVersion>4.0.0</modelVersion>
<groupId>rebond</groupId><artifactId>strimzi-crdgen</artifactId><version>1</version><packaging>pom</packaging>
<dependencies>
<dependency><groupId>io.strimzi</groupId><artifactId>api</artifactId><version>${STRIMZI_VERSION}</version></dependency>
<dependency><groupId>io.strimzi</groupId><artifactId>crd-generator</artifactId><version>${STRIMZI_VERSION}</version></dependency>
</dependencies></project>
POM
(cd "$WORK" && mvn -q -B dependency:build-classpath -Dmdep.outputFile=cp.txt ${MAVEN_REPO:+-Dmaven.repo.local=$MAVEN_REPO})
mkdir -p "$OUT"
"$JAVA" -cp "$(cat "$WORK/cp.txt")" io.strimzi.crdgenerator.CrdGenerator \
  --yaml --label app:strimzi --label strimzi.io/crd-install:true \
  --crd-api-version v1 --api-versions v1 --storage-version v1 \
  io.strimzi.api.kafka.model.kafka.Kafka="$OUT/040-Crd-kafka.yaml" \
  io.strimzi.api.kafka.model.topic.KafkaTopic="$OUT/043-Crd-kafkatopic.yaml" \
  io.strimzi.api.kafka.model.nodepool.KafkaNodePool="$OUT/04A-Crd-kafkanodepool.yaml"
sha256sum "$OUT"/*.yaml
