"""A conversation's state as the worker writes it to Redis and reads it back."""

from __future__ import annotations

from roi_metrics.domain.events import UNRESOLVED, Actor, ConversationState
from roi_metrics.state.store import decode_state, encode_state


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
