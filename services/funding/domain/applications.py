"""A funder's application of a project to one of its schemes, and its decisions:
submitted, then granted (and paid, in one or more payments) or refused. Pure Python."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Literal

from shared.errors import Conflict, DomainError

ApplicationStatus = Literal["submitted", "granted", "refused"]

#: How far ahead of today a decision or a payment may be dated: a committee's decision
#: can take effect on a later date, but not years later (a typo such as 2093).
DECISION_HORIZON = timedelta(days=366)


class InvalidDecision(Conflict):
    code = "invalid_decision"


class ImplausibleDate(DomainError):
    """A date the domain cannot have happened on (422, naming the field)."""

    code = "implausible_date"


@dataclass(frozen=True)
class Award:
    amount_eur: int
    decided_on: date


@dataclass(frozen=True)
class Refusal:
    reason: str
    decided_on: date


@dataclass(frozen=True)
class Payment:
    """A payment of the award (one of several, possibly)."""

    amount_eur: int
    paid_on: date


#: What a funder records on an application after it was submitted.
Decision = Award | Refusal | Payment


@dataclass(kw_only=True)
class Application:
    id: uuid.UUID
    project_id: uuid.UUID
    scheme_id: str
    funder: str
    status: ApplicationStatus
    amount_requested_eur: int
    submitted_at: datetime
    amount_granted_eur: int | None = None
    amount_paid_eur: int = 0
    decided_on: date | None = None
    refusal_reason: str | None = None
    #: the day it was filed, when recorded after the fact (a past call's application
    #: entered later); None: filed when recorded, on ``submitted_at``'s day
    filed_on: date | None = None

    def _undecided(self) -> None:
        if self.status != "submitted":
            raise InvalidDecision(f"application {self.id} is already {self.status}")

    def grant(self, amount_eur: int, decided_on: date, *, amount_max_eur: int | None) -> None:
        self._undecided()
        if amount_max_eur is not None and amount_eur > amount_max_eur:
            raise InvalidDecision(
                f"{amount_eur} € is above the scheme's maximum of {amount_max_eur} €"
            )
        self.status, self.amount_granted_eur, self.decided_on = "granted", amount_eur, decided_on

    def refuse(self, reason: str, decided_on: date) -> None:
        self._undecided()
        self.status, self.refusal_reason, self.decided_on = "refused", reason, decided_on

    def decide(self, decision: Decision, *, amount_max_eur: int | None, today: date) -> None:
        """Apply the decision; `amount_max_eur` is the scheme's maximum award."""
        dated = decision.paid_on if isinstance(decision, Payment) else decision.decided_on
        if dated > today + DECISION_HORIZON:
            field = "paid_on" if isinstance(decision, Payment) else "decided_on"
            raise ImplausibleDate(f"{field} {dated} is more than a year after today ({today})")
        if self.filed_on is not None and dated < self.filed_on:
            field = "paid_on" if isinstance(decision, Payment) else "decided_on"
            raise ImplausibleDate(
                f"{field} {dated} is before the application was filed ({self.filed_on})"
            )
        match decision:
            case Award(amount_eur, decided_on):
                self.grant(amount_eur, decided_on, amount_max_eur=amount_max_eur)
            case Refusal(reason, decided_on):
                self.refuse(reason, decided_on)
            case Payment(amount_eur, _):
                self.pay(amount_eur)

    def pay(self, amount_eur: int) -> None:
        if self.status != "granted" or self.amount_granted_eur is None:
            raise InvalidDecision(f"application {self.id} has no award to pay")
        if self.amount_paid_eur + amount_eur > self.amount_granted_eur:
            raise InvalidDecision(
                f"paying {amount_eur} € would exceed the award of {self.amount_granted_eur} €"
                f" ({self.amount_paid_eur} € already paid)"
            )
        self.amount_paid_eur += amount_eur
