"""The floor for `bench_campaigns`: a bare FastAPI endpoint serving a captured "my visits"
body as it is, with the same uvicorn settings as the services (one worker, the services'
log level, no access log). No auth, no database, no middleware.

    BARE_BODY_FILE=body.json BARE_PORT=8999 python -m tests.bench.bare_app
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import uvicorn
from fastapi import FastAPI, Response


def create_app(body: bytes) -> FastAPI:
    app = FastAPI(title="bare")

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/me/visits")
    async def my_visits() -> Response:
        return Response(content=body, media_type="application/json")

    return app


def main() -> None:
    body = Path(os.environ["BARE_BODY_FILE"]).read_bytes()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(body),
            host="127.0.0.1",
            port=int(os.environ["BARE_PORT"]),
            log_level=os.environ.get("BARE_LOG_LEVEL", "info"),
            access_log=False,
        )
    )
    asyncio.run(server.serve())


if __name__ == "__main__":
    main()
