"""`make bench`: run every benchmark and print its figures. Figures, not assertions:
speed depends on the machine, so nothing here passes or fails on a number."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from tests.bench import (
    bench_campaigns,
    bench_ledger,
    bench_matching,
    bench_pipeline,
    bench_relay,
    bench_sirene_import,
)

BENCHMARKS = {
    "sirene-import": bench_sirene_import.run,
    "campaigns": bench_campaigns.run,
    "ledger": bench_ledger.run,
    "matching": bench_matching.run,
    "relay": bench_relay.run,
    "pipeline": bench_pipeline.run,
}


def main() -> int:
    parser = argparse.ArgumentParser(prog="make bench")
    parser.add_argument("names", nargs="*", choices=[*BENCHMARKS, []], default=[])
    parser.add_argument("--out", type=Path, default=Path("bench-results"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for name in args.names or list(BENCHMARKS):
        result = BENCHMARKS[name]()
        (args.out / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
        print(f"[bench] {name}: results in {args.out / (name + '.json')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
