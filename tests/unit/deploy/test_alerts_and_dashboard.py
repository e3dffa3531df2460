"""The alert rules and the Grafana dashboard (deploy/observability): the rules file is
valid for Prometheus (its JSON Schema), every expression of both parses with Prometheus's
own PromQL grammar, and every metric they name is one the services expose — a renamed
metric or a typo fails here, not silently in production."""

from __future__ import annotations

import collections
import json
import os
import re
import shutil
import subprocess
import types
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.ext.asyncio import create_async_engine

from shared.events.catalogue import SITES
from shared.metrics import service_metrics
from tests.support.tools import require
from tests.unit.deploy.manifests import ROOT
from tests.unit.shared.test_metrics import runner as unstarted_runner

pytestmark = pytest.mark.unit

OBSERVABILITY = ROOT / "deploy/observability"
RULES = OBSERVABILITY / "rebond-alerts.rules.yml"
DASHBOARD = OBSERVABILITY / "grafana-dashboard.json"
RULES_SCHEMA = ROOT / "deploy/schemas/prometheus/prometheus.rules.json"
NODE_MODULES = ROOT / "services/web/node_modules"
METRIC = re.compile(r"\brebond_[a-z0-9_]+\b")
#: What the issue asks the alerts to cover, by the metric each needs.
REQUIRED_ALERTS = {
    "RebondConsumerLagGrowing": "rebond_consumer_lag_offsets",
    "RebondOutboxStale": "rebond_outbox_oldest_pending_age_seconds",
    "RebondDeadLetterTopicNotEmpty": "rebond_dead_letter_messages",
    "RebondNoRelayLeader": "rebond_relay_leader",
}


def rules() -> list[dict[str, Any]]:
    return [r for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]]


#: Grafana's variables, replaced as Grafana does before a query reaches Prometheus.
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$__interval": "15s", "$service": ".*"}


def dashboard_exprs() -> list[str]:
    board = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in board["panels"] for t in p.get("targets", [])]
    for variable, value in GRAFANA_VARIABLES.items():
        exprs = [e.replace(variable, value) for e in exprs]
    return exprs


async def exposed_names() -> set[str]:
    """Every sample name a service's /metrics can carry: a consumer (never started: its
    lag, dead-letter depth and poll age set as a running one reports them), a relay and
    a PostgreSQL pool (an engine never connected), and one HTTP request."""
    runner = unstarted_runner()
    runner._count(SITES.name, "rebond.site_registry.site_registered.v1")
    runner._last_poll = 0.0

    async def lag() -> dict[tuple[str, int], int]:
        return {(SITES.name, 0): 3}

    async def depths() -> dict[str, int]:
        return {SITES.dlq: 0}

    runner.lag = lag  # type: ignore[method-assign]
    runner.dead_letter_depths = depths  # type: ignore[method-assign]

    async def backlog() -> tuple[int, float]:
        return 2, 30.0

    relay = types.SimpleNamespace(
        lease=types.SimpleNamespace(held=True),
        published_by=collections.Counter({(SITES.name, "t"): 1}),
        problem=None,
        backlog=backlog,
    )
    engine = create_async_engine("postgresql+asyncpg://rebond@127.0.0.1:9/none")
    try:
        metrics = service_metrics(
            "campaigns",
            consumers=[runner],
            relay=relay,  # type: ignore[arg-type]
            engines={"main": engine},
        )
        metrics.http_requests.labels("campaigns", "/campaigns", "GET", "200").inc()
        metrics.http_duration.labels("campaigns", "/campaigns", "GET").observe(0.01)
        body, _ = await metrics.exposition()
    finally:
        await engine.dispose()
    return {s.name for f in text_string_to_metric_families(body.decode()) for s in f.samples}


def parse_errors(exprs: list[str]) -> list[str | None]:
    node = require(shutil.which("node"), "node is not installed here (make setup installs it)")
    package = NODE_MODULES / "@prometheus-io/lezer-promql"
    require(str(package) if package.exists() else None, "npm packages missing (make setup)")
    run = subprocess.run(
        [node, str(OBSERVABILITY / "check-promql.mjs")],
        input=json.dumps(exprs),
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
        env={**os.environ, "REBOND_NODE_MODULES": str(NODE_MODULES)},
    )
    results: list[str | None] = json.loads(run.stdout)
    return results


def test_the_rules_file_is_valid_against_the_prometheus_rules_schema() -> None:
    schema = json.loads(RULES_SCHEMA.read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    jsonschema.Draft7Validator(schema).validate(yaml.safe_load(RULES.read_text()))
    # and the schema does refuse a broken file (a duration in days written in French)
    broken = yaml.safe_load(RULES.read_text())
    broken["groups"][0]["rules"][0]["for"] = "15 jours"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft7Validator(schema).validate(broken)


def test_the_alerts_cover_the_issue_and_each_says_what_to_do() -> None:
    alerts = {r["alert"]: r for r in rules()}
    assert len(alerts) == len(rules())  # unique names
    for name, metric in REQUIRED_ALERTS.items():
        assert metric in alerts[name]["expr"], name
    for name, rule in alerts.items():
        assert rule["labels"]["severity"] in {"warning", "critical"}, name
        assert rule["annotations"]["summary"] and rule["annotations"]["description"], name


def test_every_expression_parses_with_the_promql_grammar() -> None:
    exprs = [r["expr"] for r in rules()] + dashboard_exprs()
    assert len(exprs) > 10
    errors = parse_errors(exprs)
    assert [(e, x) for e, x in zip(exprs, errors, strict=True) if x] == []
    # and the parser does refuse a broken expression
    assert parse_errors(["sum(rate(rebond_http_requests_total[5m])"]) != [None]


async def test_every_metric_the_rules_and_the_dashboard_name_is_exposed() -> None:
    exposed = await exposed_names()
    named = {
        m for expr in [r["expr"] for r in rules()] + dashboard_exprs() for m in METRIC.findall(expr)
    }
    assert named and named <= exposed, sorted(named - exposed)


def test_the_dashboard_is_a_grafana_dashboard_on_a_chosen_prometheus() -> None:
    board = json.loads(DASHBOARD.read_text())
    assert board["uid"] and board["title"] and isinstance(board["schemaVersion"], int)
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids))
    for panel in board["panels"]:
        box = panel["gridPos"]
        assert box["x"] >= 0 and box["x"] + box["w"] <= 24, panel["title"]
        for target in panel.get("targets", []):
            # Imported into any Grafana: the data source is the variable, never a uid.
            assert target["datasource"]["uid"] == "${datasource}", panel["title"]
            assert target["refId"], panel["title"]


def test_the_observability_files_are_where_the_readme_says() -> None:
    readme = (ROOT / "deploy/README.md").read_text()
    for path in (RULES, DASHBOARD):
        assert str(path.relative_to(ROOT)) in readme, path
    assert Path(RULES_SCHEMA).exists()
