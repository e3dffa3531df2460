"""The registry's command line keeps its own commands and options on `shared.cli`."""

from __future__ import annotations

import argparse
from typing import Any

import pytest

from services.site_registry.entrypoints import cli

pytestmark = pytest.mark.unit


@pytest.fixture
def main_kwargs(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    seen: dict[str, Any] = {}

    def service_main(argv: object, **kwargs: Any) -> int:
        seen.update(kwargs)
        return 0

    monkeypatch.setattr(cli, "service_main", service_main)
    assert cli.main([]) == 0
    return seen


def parse(main_kwargs: dict[str, Any], command: str, *args: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    main_kwargs["arguments"][command](parser)
    return parser.parse_args(args)


def test_the_registry_adds_its_batch_jobs(main_kwargs: dict[str, Any]) -> None:
    assert list(main_kwargs["jobs"]) == [
        "load-reference",
        "load-demo",
        "import-sirene",
        "import-legal-units",
    ]
    args = parse(main_kwargs, "import-sirene", "f.csv", "--territory", "a", "--territory", "b")
    assert (str(args.path), args.territory) == ("f.csv", ["a", "b"])
    assert str(parse(main_kwargs, "import-legal-units", "ul.zip").path) == "ul.zip"


async def test_serve_loads_the_demo_first_only_when_asked(
    main_kwargs: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    demos: list[bool] = []

    async def prepare(_registry: object, *, demo: bool) -> None:
        demos.append(demo)

    monkeypatch.setattr(cli, "prepare", prepare)
    prestart = main_kwargs["prepare"]

    await prestart(None, parse(main_kwargs, "serve"))
    await prestart(None, parse(main_kwargs, "serve", "--demo"))
    await prestart(None, argparse.Namespace(command="consume"))  # no --demo option there

    assert demos == [False, True, False]


async def test_the_command_line_takes_regions_and_everything(
    main_kwargs: dict[str, Any], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    requests: list[cli.ImportRequest] = []

    async def fake_import(_registry: object, request: cli.ImportRequest) -> int:
        requests.append(request)
        return 0

    monkeypatch.setattr(cli, "_import", fake_import)
    run = main_kwargs["jobs"]["import-sirene"][1]
    assert (
        await run(
            None, parse(main_kwargs, "import-sirene", "f.zip", "--region", "44", "--region", "01")
        )
        == 0
    )
    assert await run(None, parse(main_kwargs, "import-sirene", "f.zip", "--all-territories")) == 0
    assert [(r.regions, r.every_territory, r.territories) for r in requests] == [
        (("44", "01"), False, ()),
        ((), True, ()),
    ]
    assert (
        await run(None, parse(main_kwargs, "import-sirene", "f.zip")) == 2
    )  # no scope: nothing imported
    assert "give --territory, --region or --all-territories" in capsys.readouterr().err
    assert len(requests) == 2
