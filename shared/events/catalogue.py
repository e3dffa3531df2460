"""The topic catalogue: every topic of the system, its owner, its consumers, its key,
the event types it carries and its dead-letter topic. One place, read by the producers,
the consumers, the AsyncAPI export and the docs.

Naming: `rebond.<owner>.<stream>.v<N>`. The version is the topic's, bumped only if its
key or partitioning changes; event types carry their own versions. A per-deployment
prefix (settings `kafka_topic_prefix`) isolates tests and tenants on a shared broker.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final, Literal

from shared.events import campaigns as cp
from shared.events import detection as dt
from shared.events import funding as fd
from shared.events import site_registry as sr
from shared.events.envelope import EventPayload

#: Compatibility rules, in the Confluent Schema Registry's vocabulary (the one Sentry's
#: topic catalogue uses too). Every topic here is FULL_TRANSITIVE *within an event type*:
Compatibility = Literal["FULL_TRANSITIVE", "BACKWARD", "NONE"]

COMPATIBILITY_RULES: Final[dict[str, str]] = {
    "FULL_TRANSITIVE": (
        "Within one event type (….vN), any release's reader reads any release's events."
        " Writers may only add optional fields (with a default); readers ignore fields they"
        " do not know, at every level, and skip event types of the topic's owner they do"
        " not know (a newer release's). Removing or renaming a field, changing its type,"
        " making it required, or changing the values an enum allows is a breaking change:"
        " a new event type (….vN+1), published beside the old one until every consumer"
        " has moved. Readers must use isolation.level=read_committed (the relay publishes"
        " in transactions)."
    ),
    "BACKWARD": "new readers read old events; old readers may fail on new ones",
    "NONE": "no guarantee: readers and writers are deployed together",
}


@dataclass(frozen=True)
class Topic:
    name: str
    owner: str
    consumers: tuple[str, ...]
    key: str
    event_types: tuple[type[EventPayload], ...]
    description: str
    partitions: int = 3
    compatibility: Compatibility = "FULL_TRANSITIVE"

    @property
    def compatibility_rule(self) -> str:
        return COMPATIBILITY_RULES[self.compatibility]

    @property
    def dlq(self) -> str:
        return f"{self.name}.dlq"

    def physical(self, prefix: str = "") -> str:
        return f"{prefix}{self.name}"

    def physical_dlq(self, prefix: str = "") -> str:
        return f"{prefix}{self.dlq}"


SITES = Topic(
    name="rebond.site_registry.sites.v1",
    owner="site_registry",
    consumers=("campaigns", "detection", "funding"),
    key="site_id (SIRET): every event of one establishment lands on one partition, in order",
    event_types=(sr.SiteRegistered, sr.SiteUpdated, sr.SiteClosed, sr.ClosureAnnounced),
    description=(
        "Establishments of the registry (event-carried state) and the closure shocks"
        " announced on them. Keyed by site so a site's status changes and its closure"
        " announcement reach every consumer in the order they happened."
    ),
)

CAMPAIGNS = Topic(
    name="rebond.campaigns.campaigns.v1",
    owner="campaigns",
    # No service of ours needs the campaign's life: it is published for the crisis cell's
    # own tools (dashboards, the préfecture's reporting).
    consumers=("crisis_cell_dashboards",),
    key="campaign_id: a campaign's launch, plans, visits and closure stay in order",
    event_types=(
        cp.CampaignLaunched,
        cp.CampaignReplanned,
        cp.VisitsScheduled,
        cp.VisitCompleted,
        cp.CampaignClosed,
    ),
    description=(
        "Rebond campaigns: launched on a closure shock, re-planned by the crisis cell,"
        " visits scheduled (in batches) and completed, closed."
    ),
)

SURVEYS = Topic(
    name="rebond.campaigns.surveys.v1",
    owner="campaigns",
    consumers=("detection",),
    key="site_id (SIRET): a firm's surveys and red flags in order",
    event_types=(cp.SurveySubmitted, cp.RedFlagRaised),
    description=(
        "What consultants found at the firms: project leads (with the firm's consent to"
        " share) and red flags (risk of layoffs, relocation, closure: a possible next shock)."
    ),
)

PROJECTS = Topic(
    name="rebond.detection.projects.v1",
    owner="detection",
    consumers=("detection", "funding"),
    key="project_id: a project's detection, figures, stages and jobs stay in order",
    event_types=(
        dt.ProjectDetected,
        dt.ProjectUpdated,
        dt.ProjectQualified,
        dt.ProjectStageChanged,
        dt.JobsCreated,
        dt.ProjectAbandoned,
        dt.ProjectMerged,
    ),
    description=(
        "Investment projects from surveys and from the crisis cell, with their whole state:"
        " origin (endogenous or exogenous), stage, planned and created jobs, consent. The"
        " job-compensation ledger is a projection of this topic."
    ),
)

FUNDER_FEED = Topic(
    name="rebond.funding.funder_feed.v1",
    owner="funding",
    consumers=("detection", "regional_funders"),
    key="project_id: a project's matches, applications and decisions stay in order",
    event_types=(
        fd.MatchProposed,
        fd.MatchUpdated,
        fd.ApplicationSubmitted,
        fd.AwardGranted,
        fd.AwardRefused,
        fd.PaymentMade,
    ),
    description=(
        "The funder-facing topic: projects matched to funding schemes (with each"
        " criterion's pass/fail/unknown and reason), applications and funders' decisions."
        " Only projects whose firm consented to share them; no personal data. Decisions"
        " move a project's stage in detection (in funding, funded) and the ledger."
    ),
)

ALL_TOPICS: tuple[Topic, ...] = (SITES, CAMPAIGNS, SURVEYS, PROJECTS, FUNDER_FEED)


def topics_owned_by(service: str) -> tuple[Topic, ...]:
    return tuple(t for t in ALL_TOPICS if t.owner == service)


def topics_consumed_by(service: str) -> tuple[Topic, ...]:
    return tuple(t for t in ALL_TOPICS if service in t.consumers)


def event_registry(topics: Iterable[Topic] = ALL_TOPICS) -> dict[str, type[EventPayload]]:
    """event type → payload model, for decoding."""
    registry: dict[str, type[EventPayload]] = {}
    for topic in topics:
        for model in topic.event_types:
            registry[model.event_type] = model
    return registry


def topic_of(event: EventPayload | type[EventPayload]) -> Topic:
    event_type = event.event_type
    for topic in ALL_TOPICS:
        if any(m.event_type == event_type for m in topic.event_types):
            return topic
    raise LookupError(f"event type {event_type} is on no topic of the catalogue")
