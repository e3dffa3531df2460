"""The command path every state-changing route takes, the same in every service:

    route ─▶ CommandBus(principal, action, body=…) ─▶ one unit of work
               │ idempotency: a retry with the same Idempotency-Key replays the answer
               │ action(uow): the service layer's command, which never commits
               │ the answer's row commits with the effect and the outbox rows
               ▼
             JSONResponse (the typed result) · or a DomainError → problem details (shared.http)

Authorization is the route's `Allow(...)` dependency (who may call it) and the command's
own scope checks (which territories); the bus only needs the principal's subject, the
namespace of its idempotency keys. A route is then three lines: build the command's
input, call the bus, name the response model.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Header, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import IntegrityError

from shared import idempotency
from shared.auth import Principal
from shared.errors import DomainError
from shared.messaging.unit_of_work import SqlUnitOfWork

U = TypeVar("U", bound=SqlUnitOfWork)
T = TypeVar("T")

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias=idempotency.HEADER,
        max_length=200,
        description=(
            "any unique string per logical request (a UUID); a retry with the same key"
            " returns the first answer (`Idempotent-Replayed: true`) and changes nothing"
        ),
    ),
]


@dataclass(frozen=True)
class Created(Generic[T]):
    """A command's result when it created something (201); a plain value answers 200
    (or the route's declared status)."""

    value: T


@dataclass(frozen=True)
class Answer:
    status_code: int
    body: Any  # JSON-ready
    replayed: bool = False

    def response(self) -> JSONResponse:
        headers = {"Idempotent-Replayed": "true"} if self.replayed else None
        return JSONResponse(status_code=self.status_code, content=self.body, headers=headers)


Action = Callable[[U], Awaitable[T]]

# C0 control characters but tab, newline and carriage return, and DEL: PostgreSQL cannot
# store NUL in text at all (a 500 where SQLite would accept it), and the others are
# invisible in every page and CSV that shows the text again.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


class ControlCharacters(DomainError):
    status_code = 422
    code = "invalid_input"


def refuse_control_characters(value: Any, path: str = "") -> None:
    """Refuse a command whose input holds a control character in any string, naming
    the field; every state-changing route calls it through the bus."""
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="python")
    if isinstance(value, str):
        if _CONTROL.search(value):
            where = path or "the request"
            raise ControlCharacters(f"{where}: control characters (such as NUL) are refused")
    elif isinstance(value, dict):
        for key, item in value.items():
            refuse_control_characters(key, path)
            refuse_control_characters(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list | tuple | set | frozenset):
        for index, item in enumerate(value):
            refuse_control_characters(item, f"{path}.{index}" if path else str(index))


class CommandBus(Generic[U]):
    """One request's way to run a command in a unit of work (a FastAPI dependency)."""

    def __init__(
        self, uow_factory: Callable[[], U], request: Request | None, key: str | None
    ) -> None:
        self._uow_factory = uow_factory
        self._request = request
        self.key = key

    async def __call__(
        self,
        principal: Principal,
        action: Action[U, T],
        *,
        answer: Callable[[T], object] | None = None,
        body: Any = None,
        status_code: int = 200,
    ) -> JSONResponse:
        """Run `action` once per Idempotency-Key and answer with its result, through
        `answer` (the route's response model, e.g. `s.ProjectOut.of`) when given; `body`
        (the parsed request body) is what a reused key is compared against."""
        if answer is not None:
            action = _answered(action, answer)
        fingerprint = idempotency.request_hash(
            self._request.method if self._request else "COMMAND",
            self._request.url.path if self._request else "",
            jsonable_encoder(body),
        )
        outcome = await self.execute(
            principal, self.key, fingerprint, action, status_code, body=body
        )
        return outcome.response()

    async def execute(
        self,
        principal: Principal,
        key: str | None,
        fingerprint: str,
        action: Action[U, Any],
        status_code: int = 200,
        *,
        body: Any = None,
    ) -> Answer:
        """The bus without HTTP: for a route that runs several commands (offline sync),
        each under its own key. `body` is the command's input, checked before anything
        runs."""
        refuse_control_characters(body)
        for attempt in (1, 2):
            async with self._uow_factory() as uow:
                if key is not None:
                    stored = await idempotency.lookup(
                        uow.session, principal.subject, key, fingerprint
                    )
                    if stored is not None:
                        return Answer(stored[0], stored[1], replayed=True)
                result = await action(uow)
                code = status_code
                if isinstance(result, Created):
                    code, result = 201, result.value
                content = jsonable_encoder(result)
                if key is not None:
                    idempotency.remember(
                        uow.session, principal.subject, key, fingerprint, code, content
                    )
                try:
                    await uow.commit()
                except IntegrityError:
                    # The same key committed concurrently (a retry racing its original):
                    # the second pass finds it and replays its answer.
                    if key is None or attempt == 2:
                        raise
                    continue
            return Answer(code, content)
        raise AssertionError("unreachable")


def _answered(action: Action[U, T], answer: Callable[[T], object]) -> Action[U, Any]:
    async def answered(uow: U) -> object:
        result: Any = await action(uow)
        if isinstance(result, Created):
            return Created(answer(result.value))
        return answer(result)

    return answered


async def command_bus(request: Request, key: IdempotencyKey = None) -> CommandBus[Any]:
    """The FastAPI dependency: the bus over this service's units of work
    (`app.state.runtime.uow`). Each service aliases it with its own unit of work type:
    `Bus = Annotated[CommandBus[XUnitOfWork], Depends(command_bus)]`. Async: FastAPI
    runs a sync dependency in a worker thread, a costly hop per request."""
    return CommandBus(request.app.state.runtime.uow, request, key)
