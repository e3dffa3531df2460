"""The detection API as `serve` runs it (the real app, its auth, middleware and session),
without its workers, plus one route for `bench_ledger`'s baseline: the ledger computed at
read time from every project's row, as `GET /shocks/{id}/ledger` did before issue 13
(`views.recomputed_ledger`), same token, same JSON. Both routes are then read over HTTP
from the same process, so their difference is the computation alone.

    DETECTION_DATABASE_URL=… REBOND_JWT_SECRET=… BENCH_PORT=8998 python -m tests.bench.ledger_app
"""

from __future__ import annotations

import asyncio
import os
import uuid

import uvicorn
from fastapi import FastAPI

from services.detection.adapters.repository import ShockRepository
from services.detection.bootstrap import bootstrap
from services.detection.entrypoints.http import CrisisCell, Session, create_app
from services.detection.entrypoints.schemas import LedgerOut
from services.detection.service_layer import views
from services.detection.service_layer.access import may_see
from shared.errors import NotFound

BASELINE = "/bench/shocks/{shock_id}/ledger-recomputed"


def bench_app() -> FastAPI:
    svc = bootstrap()
    app = create_app(svc, run_workers=False)

    @app.get(BASELINE, response_model=LedgerOut)
    async def recomputed(shock_id: uuid.UUID, principal: CrisisCell, session: Session) -> LedgerOut:
        # The scoping of `visible_ledger`, then the computation the route used to do.
        shock = await ShockRepository(session).get(shock_id)
        if shock is None or not may_see(principal, shock.territory_id):
            raise NotFound(f"no closure shock {shock_id} in your territories")
        return LedgerOut.of(await views.recomputed_ledger(session, shock, None))

    return app


def main() -> None:
    server = uvicorn.Server(
        uvicorn.Config(
            bench_app(),
            host="127.0.0.1",
            port=int(os.environ["BENCH_PORT"]),
            log_level="warning",
            log_config=None,
            access_log=False,
        )
    )
    asyncio.run(server.serve())


if __name__ == "__main__":
    main()
