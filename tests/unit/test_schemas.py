"""schemas/ is generated from the contract models and must not drift; the generated schemas
accept what the decoder accepts and refuse what it refuses."""

import json
from pathlib import Path

import pytest
import yaml
from jsonschema import Draft202012Validator
from roi_metrics.codegen.schemas import drift, render
from roi_metrics.domain.events import EventType

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"


def test_committed_schemas_match_the_models() -> None:
    assert drift(SCHEMAS) == [], "run `make schemas` and commit the result"
    generated = set(render())
    committed = {path.name for path in SCHEMAS.iterdir()}
    assert committed == generated


def validator(event_type: EventType) -> Draft202012Validator:
    schema = json.loads((SCHEMAS / f"{event_type.value}.json").read_text())
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


EVENT = {
    "specversion": "1.0",
    "id": "1",
    "source": "/web/acme",
    "type": "support.cost.recorded",
    "time": "2026-03-01T11:59:00Z",
    "subject": "conv-1",
    "data": {"amount": "0.25", "currency": "USD", "category": "ai_usage"},
}


def test_a_valid_event_passes_its_schema() -> None:
    assert list(validator(EventType.COST).iter_errors(EVENT)) == []


@pytest.mark.parametrize(
    "data",
    [
        {"amount": "-0.25", "currency": "USD", "category": "ai_usage"},
        {"amount": "0.1234567", "currency": "USD", "category": "ai_usage"},
        {"amount": "0.25", "currency": "usd", "category": "ai_usage"},
        {"amount": "0.25", "currency": "USD", "category": "tokens"},
        {"currency": "USD", "category": "ai_usage"},
    ],
)
def test_invalid_data_fails_its_schema(data: dict[str, object]) -> None:
    assert list(validator(EventType.COST).iter_errors({**EVENT, "data": data})) != []


def test_asyncapi_document_names_every_event_type_and_the_dead_letter_topic() -> None:
    document = yaml.safe_load((SCHEMAS / "asyncapi.yaml").read_text())
    assert document["asyncapi"] == "3.0.0"
    assert document["channels"]["channelEvents"]["address"] == "support.events.{channel}"
    assert document["channels"]["deadLetters"]["address"] == "support.deadletter"
    payloads = {
        message["payload"]["$ref"]
        for message in document["components"]["messages"].values()
        if "$ref" in message.get("payload", {})
    }
    assert payloads == {f"{event_type.value}.json" for event_type in EventType}
    for message_ref in document["channels"]["channelEvents"]["messages"].values():
        name = message_ref["$ref"].removeprefix("#/components/messages/")
        assert name in document["components"]["messages"]


def test_the_wheels_copies_match_the_checkout() -> None:
    """service/roi_metrics/data/ (what `init` and `schemas export` write) equals deploy/ and
    schemas/; a drift fails here and `python -m roi_metrics.codegen.package_data` mends it."""
    from roi_metrics.codegen.package_data import main  # noqa: PLC0415

    assert main(["--check"]) == 0, "run `make schemas` and commit the result"
