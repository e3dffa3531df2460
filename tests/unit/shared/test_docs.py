"""The README's event catalogue names every topic, event type and dead-letter topic of
the code's catalogue: the docs third parties read cannot drift from the code."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.events.catalogue import ALL_TOPICS

README = (Path(__file__).resolve().parents[3] / "README.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("topic", ALL_TOPICS, ids=lambda t: t.name)
def test_readme_lists_the_topic_its_events_and_its_dlq(topic) -> None:
    row = next((line for line in README.splitlines() if line.startswith(f"| `{topic.name}`")), None)
    assert row is not None, f"README's event catalogue has no row for {topic.name}"
    assert f"`{topic.dlq}`" in row
    assert topic.owner in row
    for consumer in topic.consumers:
        assert consumer in row
    for model in topic.event_types:
        assert f"`{model.event_type}`" in row, f"{model.event_type} missing from the README"
