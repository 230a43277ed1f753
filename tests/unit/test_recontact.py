"""Cross-channel re-contact (CONTRACT.md §9) in the domain: the facts the fold gives, the join
per customer, the revocation, and `replay`, which joins as the customer agent does. Every
expected count is worked out in the comments."""

from __future__ import annotations

import random

from roi_metrics.domain.aggregate import CUMULATIVE, fold, revoke
from roi_metrics.domain.events import UNRESOLVED, Actor, Confirmation, ConversationState, Counter
from roi_metrics.domain.recontact import (
    MAX_KEPT,
    NOBODY,
    Customer,
    Fact,
    FactKind,
    Revocation,
    Standing,
    Start,
    fact_id,
    join,
)
from roi_metrics.ingest.replay import Replay

from tests.unit.helpers import DAY, HOUR, T0, reopened, resolved, revenue, started

WEEK = 7 * DAY
C = Counter


def fact(kind: FactKind, conversation: str, time_micros: int, channel: str = "web") -> Fact:
    return Fact(
        f"{conversation}-{kind}-{time_micros}", kind, "k1", channel, conversation, time_micros
    )


X = Standing("web", "x", T0, confirmed=False)
AT_X = Customer((X,))


def revoked_at(
    customer: Customer, kind: FactKind, conversation: str, at: int, channel: str = "web"
) -> int | None:
    """When the revocation `fact` makes is counted, None when it makes none."""
    revocation = join(customer, fact(kind, conversation, at, channel), WEEK)[1]
    return None if revocation is None else revocation.at_micros


def test_another_conversation_within_the_window_revokes_the_standing_resolution() -> None:
    after, revocation = join(NOBODY, fact(FactKind.RESOLVED, "x", T0), WEEK)
    assert (after.standing, revocation) == (X, None)
    # a conversation on another channel 7 days later, to the microsecond: inside
    kept, revocation = join(AT_X, fact(FactKind.STARTED, "y", T0 + WEEK, "slack"), WEEK)
    assert revocation == Revocation(X, T0 + WEEK) and kept.standing is None  # revoked once
    # one microsecond later: outside, the resolution stands
    assert revoked_at(AT_X, FactKind.STARTED, "y", T0 + WEEK + 1) is None
    # started before the resolution (t_B - t_R < 0): not a re-contact
    assert revoked_at(AT_X, FactKind.STARTED, "y", T0 - 1) is None
    # the resolved conversation itself starting again: not another conversation
    assert revoked_at(AT_X, FactKind.STARTED, "x", T0 + HOUR) is None
    # the same conversation id on another channel is another conversation
    assert revoked_at(AT_X, FactKind.STARTED, "x", T0 + HOUR, "slack") == T0 + HOUR


def test_a_reopen_or_a_later_resolution_changes_what_stands() -> None:
    assert join(AT_X, fact(FactKind.CLEARED, "x", T0 + HOUR), WEEK)[0].standing is None
    assert join(AT_X, fact(FactKind.CLEARED, "z", T0 + HOUR), WEEK)[0].standing == X
    z = Standing("web", "z", T0 + HOUR, False)
    later = join(AT_X, fact(FactKind.RESOLVED, "z", T0 + HOUR), WEEK)[0]
    assert later.resolutions == (X, z) and later.standing == z  # the latest stands
    # a start after both revokes the latest, z; x, superseded by z, goes with it
    kept, revocation = join(later, fact(FactKind.STARTED, "y", T0 + DAY), WEEK)
    assert revocation == Revocation(z, T0 + DAY) and kept.resolutions == ()
    # a start between them (joined late: its channel lags) revokes x, the one standing then
    kept, revocation = join(later, fact(FactKind.STARTED, "y", T0 + 60_000_000), WEEK)
    assert revocation == Revocation(X, T0 + 60_000_000) and kept.resolutions == (z,)
    # x resolved again, even at an earlier time (a late event): that one is x's now
    earlier = join(later, fact(FactKind.RESOLVED, "x", T0 - HOUR), WEEK)[0]
    assert earlier.resolutions == (Standing("web", "x", T0 - HOUR, False), z)
    assert join(NOBODY, fact(FactKind.STARTED, "y", T0), WEEK)[1] is None


def test_a_start_joined_before_the_resolution_it_follows_still_revokes_it() -> None:
    """Another channel lagging: the customer's new conversation (slack, an hour after the
    resolution) is joined before the resolution (web). The start is remembered; the
    resolution, when it comes, is revoked at the start's time. And a resolution joined after
    a later one does not replace it."""
    started, none = join(NOBODY, fact(FactKind.STARTED, "y", T0 + HOUR, "slack"), WEEK)
    assert none is None and started.starts == (Start("slack", "y", T0 + HOUR),)
    kept, revocation = join(started, fact(FactKind.RESOLVED, "x", T0), WEEK)
    assert revocation == Revocation(X, T0 + HOUR) and kept.standing is None
    # a start more than the window after it does not
    assert join(started, fact(FactKind.RESOLVED, "x", T0 + HOUR - WEEK - 1), WEEK)[1] is None
    z = Standing("web", "z", T0 + DAY, False)
    newer = join(Customer((z,)), fact(FactKind.RESOLVED, "x", T0), WEEK)[0]
    assert newer.resolutions == (X, z) and newer.standing == z  # x kept, z still the latest
    # starts are kept within the window of the newest, at most MAX_KEPT of them
    many = NOBODY
    for i in range(MAX_KEPT + 5):
        many = join(many, fact(FactKind.STARTED, f"s{i}", T0 + i * HOUR), WEEK)[0]
    assert len(many.starts) == MAX_KEPT and many.starts[-1].conversation == f"s{MAX_KEPT + 4}"
    much_later = join(many, fact(FactKind.STARTED, "late", T0 + 2 * WEEK), WEEK)[0]
    assert [s.conversation for s in much_later.starts] == ["late"]


def test_the_fold_tells_the_facts_of_conversations_with_a_customer() -> None:
    events = [
        started("x", customer="k1", time_micros=T0),
        resolved("x", confirmation=Confirmation.CONFIRMED, time_micros=T0 + 60),
        revenue(5_000_000, "x", time_micros=T0 + 90),  # says nothing of the customer
        started("n", time_micros=T0),  # no customer: no fact
        resolved("n", time_micros=T0 + 60),
        reopened("x", time_micros=T0 + 120),
        resolved("x", by=Actor.HUMAN, time_micros=T0 + 180),
    ]
    delta = fold(events, {}, set(), T0 + HOUR, WEEK)
    kinds = [(position, f.kind, f.conversation, f.confirmed) for position, f in delta.facts]
    assert kinds == [
        (0, FactKind.STARTED, "x", False),
        (1, FactKind.RESOLVED, "x", True),
        (5, FactKind.CLEARED, "x", False),
        (6, FactKind.CLEARED, "x", False),
    ]
    assert delta.facts[1][1].id == fact_id("web", events[1].source, events[1].event_id)
    assert delta.states[("web", "x")] == ConversationState(Actor.HUMAN, T0 + 180, customer="k1")


def test_a_revocation_counts_once_and_leaves_the_conversation_unresolved() -> None:
    confirmed = ConversationState(Actor.AI, T0, confirmed=True, customer="k1")
    delta = revoke(Standing("web", "x", T0, True), confirmed, T0 + DAY, T0 + 2 * DAY, WEEK)
    assert delta is not None
    assert delta.states == {("web", "x"): ConversationState(customer="k1")}
    assert delta.increments[("web", CUMULATIVE)] == {C.AI_RECONTACTS: 1, C.AI_REVOKED_CONFIRMED: 1}
    day = T0 // 1_000_000 + 86_400  # the start's day bucket (T0 + 1 day is 12:00 UTC)
    assert ("web", ("d", day - day % 86_400)) in delta.increments
    # the same resolution, no longer there (reopened, or resolved again since): nothing
    assert revoke(X, confirmed.unresolved(), T0 + DAY, T0 + 2 * DAY, WEEK) is None
    again = ConversationState(Actor.AI, T0 + HOUR, customer="k1")
    assert revoke(X, again, T0 + DAY, T0 + 2 * DAY, WEEK) is None
    # a late start (older than the lateness): only the cumulative bucket
    late = revoke(X, ConversationState(Actor.AI, T0, customer="k1"), T0 + DAY, T0 + 9 * DAY, WEEK)
    assert late is not None and list(late.increments) == [("web", CUMULATIVE)]
    assert UNRESOLVED.unresolved() is UNRESOLVED


def _line(*events: dict[str, object]) -> bytes:
    import json  # noqa: PLC0415

    return json.dumps(list(events)).encode()


def _event(
    kind: str, conversation: str, seconds: int, channel: str, **data: object
) -> dict[str, object]:
    body: dict[str, object] = {
        "specversion": "1.0",
        "id": f"{conversation}-{kind}-{seconds}",
        "source": f"/{channel}/t",
        "type": f"support.{kind}",
        "time": f"2026-03-0{1 + seconds // 86_400}T{(seconds % 86_400) // 3600:02d}:"
        f"{(seconds % 3600) // 60:02d}:{seconds % 60:02d}Z",
        "subject": conversation,
        "data": {"channel": channel, **data},
    }
    return body


def _journey() -> list[bytes]:
    """Customer k1: an AI resolution on web (x, confirmed), then a conversation on slack (y)
    a day later: x is revoked. Customer k2: an AI resolution on web (u), reopened before
    their next conversation (v): a reopen, no re-contact. Customer k3: an AI resolution (p)
    and a conversation 8 days later (q): outside the window."""
    started_x = _event("conversation.started", "x", 0, "web", handled_by="ai")
    started_x["customer"] = "k1"
    started_y = _event("conversation.started", "y", 86_400, "slack", handled_by="ai")
    started_y["customer"] = "k1"
    started_u = _event("conversation.started", "u", 60, "web", handled_by="ai")
    started_u["customer"] = "k2"
    started_v = _event("conversation.started", "v", 7200, "web", handled_by="ai")
    started_v["customer"] = "k2"
    started_p = _event("conversation.started", "p", 0, "web", handled_by="ai")
    started_p["customer"] = "k3"
    started_q = _event("conversation.started", "q", 8 * 86_400, "web", handled_by="ai")
    started_q["customer"] = "k3"
    return [
        _line(started_x, started_u, started_p),
        _line(
            _event(
                "conversation.resolved", "x", 30, "web", resolved_by="ai", confirmation="confirmed"
            )
        ),
        _line(_event("conversation.resolved", "u", 90, "web", resolved_by="ai")),
        _line(_event("conversation.resolved", "p", 30, "web", resolved_by="ai")),
        _line(_event("conversation.reopened", "u", 3600, "web")),
        _line(started_v),
        _line(started_y),
        _line(started_q),
    ]


def _replayed(lines: list[bytes]) -> Replay:
    at = (T0 // 1_000_000 - 12 * 3600 + 9 * 86_400) * 1_000_000  # 2026-03-10 00:00 UTC
    replay = Replay("USD", at, 30 * 86_400)
    replay.feed(enumerate(lines, 1))
    return replay


def test_replay_counts_the_re_contact_on_the_resolved_conversation_s_channel() -> None:
    replay = _replayed(_journey())
    web = replay.buckets[("web", CUMULATIVE)]
    # x revoked by y (k1); u reopened (k2); p not revoked: q came 8 days later (k3)
    assert web[C.AI_RECONTACTS] == 1
    assert web[C.AI_REVOKED_CONFIRMED] == 1  # x was confirmed
    assert web[C.AI_REOPENS] == 1
    assert C.AI_RECONTACTS not in replay.buckets[("slack", CUMULATIVE)]
    assert replay.states[("web", "x")] == ConversationState(customer="k1")
    day_of_y = (T0 // 1_000_000 - 12 * 3600) + 86_400  # 2026-03-02: the start's day
    assert replay.buckets[("web", ("d", day_of_y))] == {
        C.AI_RECONTACTS: 1,
        C.AI_REVOKED_CONFIRMED: 1,
    }


def test_the_order_of_other_customers_and_batch_boundaries_change_nothing() -> None:
    """k1's, k2's and k3's lines interleaved in random orders that keep each customer's own
    order, and the lines joined into larger batches: the same counts."""
    lines = _journey()
    expected = _replayed(lines).buckets
    owners = [None, "k1", "k2", "k3", "k2", "k2", "k1", "k3"]  # whose line it is (0: all)
    rng = random.Random(7)
    for _ in range(20):
        queues = {
            c: [line for line, o in zip(lines, owners, strict=True) if o == c]
            for c in ("k1", "k2", "k3")
        }
        shuffled = [lines[0]]
        while any(queues.values()):
            shuffled.append(queues[rng.choice([c for c, q in queues.items() if q])].pop(0))
        assert _replayed(shuffled).buckets == expected
    web = b"[" + b",".join(line[1:-1] for line in lines[:6]) + b"]"  # web's first six lines
    assert _replayed([web, *lines[6:]]).buckets == expected  # as one batch
    assert _replayed(lines + lines).buckets == expected  # every event twice: duplicates


def test_one_return_revokes_one_resolution_whatever_the_order() -> None:
    """Three AI resolutions of one customer (web A at T0, chat C at T0 + 1 s, sms D at
    T0 + 2 s) and one conversation B at T0 + 2 s, joined in the order A, B, C, D (B's channel
    ahead of C's and D's): one revocation, as in event-time order. Which one differs: B,
    joined, revokes A, the only resolution it can see; in event time it would revoke D, the
    one standing then. The join takes nothing back (docs/metrics.md)."""
    s = 1_000_000
    customer, revoked = NOBODY, []
    for kind, conversation, at, channel in (
        (FactKind.RESOLVED, "a", T0, "web"),
        (FactKind.STARTED, "b", T0 + 2 * s, "email"),
        (FactKind.RESOLVED, "c", T0 + s, "chat"),
        (FactKind.RESOLVED, "d", T0 + 2 * s, "sms"),
    ):
        customer, revocation = join(customer, fact(kind, conversation, at, channel), WEEK)
        revoked += [] if revocation is None else [revocation.resolution.channel]
    assert revoked == ["web"]
    assert customer.standing == Standing("sms", "d", T0 + 2 * s, False)


def test_remembered_starts_go_to_the_resolutions_they_follow_first() -> None:
    """Starts joined S1 (email, 100 s), then S2 (sms, 10 s: sms lags); resolutions joined
    after them R1 (web, 5 s), R2 (chat, 50 s). In event time S2 revokes R1 and S1 revokes
    R2: so here, R1 taking the earliest start after it (S2), not the first remembered (S1),
    which R2 then takes."""
    s = 1_000_000
    customer, revoked = NOBODY, []
    for kind, conversation, at, channel in (
        (FactKind.STARTED, "s1", T0 + 100 * s, "email"),
        (FactKind.STARTED, "s2", T0 + 10 * s, "sms"),
        (FactKind.RESOLVED, "r1", T0 + 5 * s, "web"),
        (FactKind.RESOLVED, "r2", T0 + 50 * s, "chat"),
    ):
        customer, revocation = join(customer, fact(kind, conversation, at, channel), WEEK)
        if revocation is not None:
            revoked.append((revocation.resolution.conversation, revocation.at_micros))
    assert revoked == [("r1", T0 + 10 * s), ("r2", T0 + 100 * s)]
    assert customer == NOBODY  # both starts used up, nothing standing


def test_a_revocation_that_does_not_apply_uses_nothing_up() -> None:
    """slack's B (40 s) joined first; then web's A: AI-resolved at 10 s, reopened at 20 s,
    AI-resolved again at 30 s, all applied in one batch before the agent joins its facts.
    The revocation of the 10 s resolution finds A holding the 30 s one: it does not apply,
    B is not used up, and revokes the 30 s resolution when its fact comes (as in event
    time: the reopen counts, then B revokes the second resolution)."""
    s = 1_000_000
    b_first, _ = join(NOBODY, fact(FactKind.STARTED, "b", T0 + 40 * s, "slack"), WEEK)
    first = fact(FactKind.RESOLVED, "a", T0 + 10 * s)
    _, tried = join(b_first, first, WEEK)
    assert tried == Revocation(Standing("web", "a", T0 + 10 * s, False), T0 + 40 * s)
    kept, none = join(b_first, first, WEEK, {tried.resolution})  # found not to stand
    assert none is None and kept == b_first
    kept = join(kept, fact(FactKind.CLEARED, "a", T0 + 20 * s), WEEK)[0]
    kept, revocation = join(kept, fact(FactKind.RESOLVED, "a", T0 + 30 * s), WEEK)
    assert revocation == Revocation(Standing("web", "a", T0 + 30 * s, False), T0 + 40 * s)
    # the same in replay, through the fold: split into lines or in one batch
    a = [
        _event("conversation.started", "a", 0, "web", handled_by="ai"),
        _event("conversation.resolved", "a", 10, "web", resolved_by="ai"),
        _event("conversation.reopened", "a", 20, "web"),
        _event("conversation.resolved", "a", 30, "web", resolved_by="ai"),
    ]
    a[0]["customer"] = "k1"
    b = _event("conversation.started", "b", 40, "slack", handled_by="ai")
    b["customer"] = "k1"
    in_event_order = _replayed([*(_line(e) for e in a), _line(b)]).buckets[("web", CUMULATIVE)]
    assert (in_event_order[C.AI_REOPENS], in_event_order[C.AI_RECONTACTS]) == (1, 1)
    batched = _replayed([_line(b), _line(*a)]).buckets[("web", CUMULATIVE)]
    assert batched == in_event_order
    # B applied before the reopen (lines one by one): B revokes the 10 s resolution, and
    # the reopen after it is not the AI's (CONTRACT.md §9): the order the service processes
    split = _replayed([_line(b), *(_line(e) for e in a)]).buckets[("web", CUMULATIVE)]
    assert (split.get(C.AI_REOPENS, 0), split[C.AI_RECONTACTS]) == (0, 1)


def test_a_resolution_processed_before_its_conversation_s_start_still_takes_part() -> None:
    """Published out of order: x's AI resolution first (no customer known yet: no fact),
    then its started event naming the customer: it tells the resolution too."""
    first = fold(
        [resolved("x", confirmation=Confirmation.CONFIRMED, time_micros=T0)],
        {},
        set(),
        T0 + HOUR,
        WEEK,
    )
    assert first.facts == []
    then = fold(
        [started("x", customer="k1", time_micros=T0 - 60)], first.states, set(), T0 + HOUR, WEEK
    )
    kinds = [(f.kind, f.time_micros, f.confirmed) for _, f in then.facts]
    assert kinds == [(FactKind.STARTED, T0 - 60, False), (FactKind.RESOLVED, T0, True)]
    assert len({f.id for _, f in then.facts}) == 2  # two facts, two ids
    # once the customer is known, a later started event tells no resolution again
    again = fold(
        [started("x", customer="k2", time_micros=T0 + 60)], then.states, set(), T0 + HOUR, WEEK
    )
    assert [f.kind for _, f in again.facts] == [FactKind.STARTED]


def test_a_return_joined_before_or_after_the_resolution_it_follows_counts_the_same() -> None:
    """A property over 300 random customers: an AI resolution R on one channel (after its
    own start) and the customer's next conversation B on another (later resolved by the AI
    too), from 5 s before R to a microsecond past the window after it. Whatever order their
    channels' facts are joined in (each conversation's own in order), the revocation is
    that of event-time order. (Longer journeys joined out of order can differ: a start
    revokes what it sees when joined, and nothing is taken back: docs/metrics.md.)"""
    rng = random.Random(11)
    for trial in range(300):
        t_r = T0 + rng.randrange(0, DAY)
        after = rng.choice([-5_000_000, 0, 1, HOUR, WEEK, WEEK + 1])
        t_b = t_r + after
        conversations = [
            [
                fact(FactKind.STARTED, "r", t_r - 60_000_000, "web"),
                fact(FactKind.RESOLVED, "r", t_r, "web"),
            ],
            [
                fact(FactKind.STARTED, "b", t_b, "slack"),
                fact(FactKind.RESOLVED, "b", t_b + 60_000_000, "slack"),
            ],
        ]
        in_time = sorted((f for facts in conversations for f in facts), key=lambda f: f.time_micros)
        interleaved: list[Fact] = []
        queues = [list(facts) for facts in conversations]
        while any(queues):
            interleaved.append(rng.choice([q for q in queues if q]).pop(0))

        def revocations(facts: list[Fact]) -> list[Revocation]:
            customer, found = NOBODY, []
            for one in facts:
                customer, revocation = join(customer, one, WEEK)
                found += [] if revocation is None else [revocation]
            return found

        expected = revocations(in_time)
        assert expected == (
            [] if not 0 <= after <= WEEK else [Revocation(Standing("web", "r", t_r, False), t_b)]
        ), trial
        assert revocations(interleaved) == expected, (trial, [f.id for f in interleaved])
