"""The pods' termination grace covers a graceful stop: the preStop pause, the requests'
drain (`shutdown_timeout_s`, whatever the manifest sets it to) and the workers' stop —
or Kubernetes kills the process mid-batch, the relay's lease held until its TTL."""

from __future__ import annotations

import inspect

import pytest

from shared.runtime import workers_lifespan
from shared.settings import ServiceSettings
from tests.unit.deploy.manifests import containers, load_all, manifest_files

pytestmark = pytest.mark.unit

#: workers_lifespan's own bound on stopping the workers, and the second it then waits.
WORKERS_STOP_S = inspect.signature(workers_lifespan).parameters["stop_timeout_s"].default + 1


def test_every_deployments_grace_covers_prestop_drain_and_workers() -> None:
    default_drain = ServiceSettings.model_fields["shutdown_timeout_s"].default
    seen = 0
    for path in manifest_files():
        for doc in load_all(path):
            if doc.get("kind") != "Deployment":
                continue
            pod = doc["spec"]["template"]["spec"]
            grace = pod.get("terminationGracePeriodSeconds", 30)
            for container in containers(pod):
                env = {e["name"]: e.get("value") for e in container.get("env", [])}
                drain = next(
                    (float(v) for k, v in env.items() if k.endswith("SHUTDOWN_TIMEOUT_S") and v),
                    default_drain,
                )
                pre_stop = container.get("lifecycle", {}).get("preStop", {}).get("exec", {})
                command = pre_stop.get("command", [])
                pause = float(command[1]) if command[:1] == ["sleep"] else 0.0
                name = doc["metadata"]["name"]
                if name == "web":
                    continue  # no workers; uvicorn's own default drain
                assert grace >= pause + drain + WORKERS_STOP_S, (name, grace, pause, drain)
                seen += 1
    assert seen >= 4  # the four services
