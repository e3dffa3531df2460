"""The funding service's unit of work: its writes are explicit (rows and published
events), so it needs no aggregate tracking beyond the shared base."""

from __future__ import annotations

from shared.messaging.unit_of_work import SqlUnitOfWork


class FundingUnitOfWork(SqlUnitOfWork):
    pass
