"""The deployments' topics are generated from the topic catalogue, never kept by hand."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from deploy.gen import topics as gen
from shared.events.catalogue import ALL_TOPICS, SITES, Topic

REGENERATE = f"run `{gen.COMMAND}` and commit the result"


def test_the_committed_files_are_what_the_generator_writes() -> None:
    for path, text in gen.outputs().items():
        assert path.exists(), f"{path} is missing: {REGENERATE}"
        assert path.read_text() == text, f"{path} is out of date: {REGENERATE}"


def test_the_check_mode_reports_a_stale_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    stale = tmp_path / "topics.yaml"
    stale.write_text("hand-edited\n")
    monkeypatch.setattr(gen, "ROOT", tmp_path)
    monkeypatch.setattr(gen, "outputs", lambda: {stale: "generated\n"})

    assert gen.main(["--check"]) == 1
    assert gen.COMMAND in capsys.readouterr().err
    assert stale.read_text() == "hand-edited\n"  # --check never writes


def test_every_catalogue_topic_and_its_dead_letter_topic_is_a_kafka_topic_once() -> None:
    docs = [d for d in yaml.safe_load_all(gen.K8S_TOPICS.read_text()) if d]
    by_name = {d["spec"]["topicName"]: d for d in docs}
    expected = {t.physical() for t in ALL_TOPICS} | {t.physical_dlq() for t in ALL_TOPICS}

    assert len(docs) == len(by_name) == 2 * len(ALL_TOPICS)
    assert set(by_name) == expected
    assert len({d["metadata"]["name"] for d in docs}) == len(docs)
    for doc in docs:
        assert doc["apiVersion"] == "kafka.strimzi.io/v1"  # what Strimzi >= 1.0 serves
        assert doc["metadata"]["labels"]["strimzi.io/cluster"] == gen.CLUSTER
        assert doc["metadata"]["namespace"] == gen.NAMESPACE


def test_topic_settings_follow_the_catalogue_and_the_production_rules() -> None:
    by_name = {
        d["spec"]["topicName"]: d["spec"]
        for d in yaml.safe_load_all(gen.K8S_TOPICS.read_text())
        if d
    }
    for topic in ALL_TOPICS:
        main, dlq = by_name[topic.physical()], by_name[topic.physical_dlq()]
        assert main["partitions"] == topic.partitions
        assert main["config"]["retention.ms"] == -1
        assert main["config"]["retention.bytes"] == -1
        assert dlq["partitions"] == 1
        assert dlq["config"]["retention.ms"] == 30 * 24 * 3600 * 1000
        for spec in (main, dlq):
            assert spec["replicas"] == 3
            assert spec["config"]["min.insync.replicas"] == 2


def test_the_compose_script_creates_the_same_topics_with_the_same_settings() -> None:
    script = gen.COMPOSE_TOPICS.read_text()
    created = re.findall(r"^create (\S+) (\d+) (.*)$", script, flags=re.MULTILINE)

    assert {name for name, _, _ in created} == {
        n for t in ALL_TOPICS for n in (t.physical(), t.physical_dlq())
    }
    assert len(created) == 2 * len(ALL_TOPICS)
    for topic in ALL_TOPICS:
        (main,) = [c for c in created if c[0] == topic.physical()]
        (dlq,) = [c for c in created if c[0] == topic.physical_dlq()]
        assert main[1] == str(topic.partitions)
        assert "retention.ms=-1" in main[2]
        assert dlq[1] == "1"
        assert "retention.ms=2592000000" in dlq[2]
    assert "--if-not-exists" in script  # re-run on every `docker compose up`


def test_the_generator_reads_the_catalogue_it_is_given() -> None:
    extra = Topic(
        name="rebond.test.extra.v1",
        owner="test_owner",
        consumers=(),
        key="k",
        event_types=(),
        description="d",
        partitions=6,
    )
    text = gen.render_k8s(gen.topic_specs((SITES, extra)))
    docs = {d["spec"]["topicName"]: d for d in yaml.safe_load_all(text) if d}

    assert docs["rebond.test.extra.v1"]["spec"]["partitions"] == 6
    assert docs["rebond.test.extra.v1"]["metadata"]["name"] == "rebond.test.extra.v1"
    assert docs["rebond.test.extra.v1.dlq"]["metadata"]["labels"]["app.kubernetes.io/name"] == (
        "test-owner"
    )
    assert len(docs) == 4
