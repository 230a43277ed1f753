"""Builders of domain events, and hand-built counters of two channels, for unit tests."""

import datetime as dt
import itertools
from pathlib import Path

from roi_metrics.domain.events import (
    Actor,
    Confirmation,
    CostCategory,
    Counter,
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


# Hand-built 24h counters of two channels. The figures they give are worked out by hand in
# the comments of test_figures.py (web: value 878, AI cost 280, net AI resolutions 112;
# slack: net 20, value 20 x 5 = 100, AI cost 50) and checked again, rendered, by
# test_exporter.py and test_top.py; change a number here and those expectations change too.
ROOT = Path(__file__).resolve().parents[2]
C = Counter
WEB = {
    C.CONVERSATIONS: 200,
    C.AI_CONVERSATIONS: 160,
    C.ESCALATIONS: 24,
    C.AI_RESOLUTIONS_ASSUMED: 90,
    C.AI_RESOLUTIONS_CONFIRMED: 30,
    C.AI_REOPENS: 8,
    C.AI_REVOKED_CONFIRMED: 3,  # of the 8 reopens, 3 undid confirmed resolutions
    C.HUMAN_RESOLUTIONS: 40,
    C.AI_COST_MICROS: 280_000_000,
    C.HUMAN_COST_MICROS: 260_000_000,
    C.AI_REVENUE_MICROS: 150_000_000,
    C.HUMAN_REVENUE_MICROS: 99_000_000,
    C.CSAT_COUNT_AI: 40,
    C.CSAT_SUM_AI: 170,
    C.CSAT_COUNT_HUMAN: 10,
    C.CSAT_SUM_HUMAN: 38,
}
SLACK = {
    C.CONVERSATIONS: 100,
    C.AI_CONVERSATIONS: 50,
    C.AI_RESOLUTIONS_ASSUMED: 20,
    C.AI_COST_MICROS: 50_000_000,
}


# The deploy card has a ramp (CONTRACT.md §11): default start 0.20 and target 0.60, whatsapp
# live from 2026-03-01 (the programme from 2026-01-15). RAMPED adds a target of its own to
# whatsapp; NO_RAMP is the card without any of it.
DEPLOY_CARD = (ROOT / "deploy" / "costs.toml").read_text()
RAMP = """[ramp]
days_to_95 = 105
tolerance = 0.2
"""
RAMPED = DEPLOY_CARD.replace(
    'go_live = "2026-03-01"', 'go_live = "2026-03-01"\nresolution_target = 0.70', 1
)
NO_RAMP = "\n".join(
    line
    for line in DEPLOY_CARD.replace(RAMP, "").splitlines()
    if not line.startswith(("resolution_start", "resolution_target", 'go_live = "2026-03-01"'))
)
