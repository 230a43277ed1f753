"""Builders of domain events for unit tests."""

import datetime as dt
import itertools

from roi_metrics.domain.events import (
    Actor,
    Confirmation,
    CostCategory,
    EventType,
    SupportEvent,
)

_ids = itertools.count(1)
T0 = int(dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC).timestamp()) * 1_000_000
HOUR = 3600 * 1_000_000
DAY = 24 * HOUR


def event(
    kind: EventType,
    conversation: str = "c1",
    time_micros: int = T0,
    channel: str = "web",
    **fields: object,
) -> SupportEvent:
    return SupportEvent(
        source=f"/{channel}/test",
        event_id=str(next(_ids)),
        channel=channel,
        conversation_id=conversation,
        type=kind,
        time_micros=time_micros,
        **fields,  # type: ignore[arg-type]
    )


def started(conversation: str = "c1", by: Actor = Actor.AI, **kw: object) -> SupportEvent:
    return event(EventType.STARTED, conversation, handled_by=by, **kw)  # type: ignore[arg-type]


def resolved(
    conversation: str = "c1",
    by: Actor = Actor.AI,
    confirmation: Confirmation = Confirmation.ASSUMED,
    **kw: object,
) -> SupportEvent:
    return event(
        EventType.RESOLVED,
        conversation,
        resolved_by=by,
        confirmation=confirmation,
        **kw,  # type: ignore[arg-type]
    )


def reopened(conversation: str = "c1", **kw: object) -> SupportEvent:
    return event(EventType.REOPENED, conversation, **kw)  # type: ignore[arg-type]


def csat(score: int, conversation: str = "c1", **kw: object) -> SupportEvent:
    return event(EventType.CSAT, conversation, score=score, **kw)  # type: ignore[arg-type]


def cost(
    micros: int, category: CostCategory, conversation: str = "c1", **kw: object
) -> SupportEvent:
    return event(
        EventType.COST,
        conversation,
        amount_micros=micros,
        cost_category=category,
        **kw,  # type: ignore[arg-type]
    )


def revenue(micros: int, conversation: str = "c1", **kw: object) -> SupportEvent:
    return event(EventType.REVENUE, conversation, amount_micros=micros, **kw)  # type: ignore[arg-type]
