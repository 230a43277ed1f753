"""A conversation's state as the worker writes it to Redis and reads it back."""

from __future__ import annotations

import json

import pytest
from roi_metrics.domain.events import UNRESOLVED, Actor, ConversationState
from roi_metrics.domain.recontact import NOBODY, Customer, Standing, Start
from roi_metrics.state.customers import customer_key, decode_customer, encode_customer
from roi_metrics.state.store import StateCorrupt, decode_state, encode_state


def test_a_conversation_s_state_is_written_and_read_back_with_its_confirmation() -> None:
    for state in (
        ConversationState(Actor.AI, 1_700_000_000_000_000),
        ConversationState(Actor.AI, 1_700_000_000_000_000, confirmed=True),
        ConversationState(Actor.HUMAN, 5),
        UNRESOLVED,
    ):
        assert decode_state(encode_state(state).encode() or None) == state
    # written by a worker before the confirmation was kept: read as not confirmed
    assert decode_state(b"ai:17") == ConversationState(Actor.AI, 17)
    assert encode_state(ConversationState(Actor.AI, 17, confirmed=True)) == "ai:17:c"


def test_a_conversation_s_customer_is_kept_resolved_or_not() -> None:
    for state in (
        ConversationState(customer="cust-1"),
        ConversationState(Actor.AI, 17, confirmed=True, customer="a:b:c"),  # colons in it
        ConversationState(Actor.HUMAN, 17, customer="x"),
    ):
        assert decode_state(encode_state(state).encode()) == state
    assert encode_state(ConversationState(customer="k")) == ":::k"
    assert encode_state(ConversationState(Actor.AI, 5, customer="k")) == "ai:5::k"


@pytest.mark.parametrize(
    "raw",
    [
        b"ai:5:x",
        b"ai:5:",
        b"ai:5:c:",
        b"human:5:c",
        b"ai:1_000",
        b"robot:5",
        b"ai",
        b":5::k",
        b"::c:k",
    ],
)
def test_a_state_this_service_never_writes_is_refused(raw: bytes) -> None:
    with pytest.raises(StateCorrupt):
        decode_state(raw)


def test_what_is_kept_of_a_customer_is_read_back_and_garbage_reads_as_nothing() -> None:
    kept = Customer(
        (Standing("web", "x:1", 17, True), Standing("chat", "z", 18, False)),
        (Start("slack", "y", 20),),
    )
    assert decode_customer(encode_customer(kept).encode()) == kept
    # and the latest as "s", which a worker of the earlier version reads (rolling upgrade)
    assert json.loads(encode_customer(kept))["s"] == ["chat", "z", 18, False]
    # the one standing resolution an earlier version kept ("s") is read as the list
    earlier = b'{"s":["web","x:1",17,true],"b":[]}'
    assert decode_customer(earlier) == Customer((Standing("web", "x:1", 17, True),))
    assert decode_customer(encode_customer(NOBODY).encode()) == NOBODY
    for raw in (b"", b"not json", b"[]", b'{"s": [1, 2], "b": "x"}', b'{"b": [["a", "b"]]}'):
        assert decode_customer(raw or None) == NOBODY
    assert customer_key("a}b{c").count("{") == 1  # a brace in an id cannot move the slot
