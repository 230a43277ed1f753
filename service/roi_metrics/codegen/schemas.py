"""Generates schemas/ from the contract models: one JSON Schema per event type and an
AsyncAPI 3.0 document of the topics. `python -m roi_metrics.codegen.schemas --check` fails on drift.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import yaml

from roi_metrics import __version__
from roi_metrics.codegen import PROJECT_ROOT
from roi_metrics.domain.channels import CHANNEL_PATTERN, DEAD_LETTER_TOPIC, DEFAULT_TOPIC_PREFIX
from roi_metrics.domain.events import EventType
from roi_metrics.ingest.contract import (
    DeadLetterHeader,
    DeadLetterReason,
    event_model,
)
from roi_metrics.ingest.decode import MAX_BATCH_EVENTS, MAX_RECORD_BYTES

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
OPTIONAL_HEADERS = (
    DeadLetterHeader.TRUNCATED,
    DeadLetterHeader.KEY_TRUNCATED,
    DeadLetterHeader.ORIGIN_EVENT,
    DeadLetterHeader.HEADERS_TRUNCATED,
)
DEFAULT_DIR = PROJECT_ROOT / "schemas"
BINARY_REQUIRED = ("specversion", "id", "source", "type", "time", "subject")


def event_schema(event_type: EventType) -> dict[str, Any]:
    """The JSON Schema of one event type's CloudEvent."""
    schema = event_model(event_type).model_json_schema()
    return {"$schema": SCHEMA_DIALECT, "$id": f"{event_type.value}.json", **schema}


def _message_name(event_type: EventType) -> str:
    return event_model(event_type).__name__


def asyncapi() -> dict[str, Any]:
    """The AsyncAPI 3.0 document: channel topics in, dead letters out."""
    kafka_key = {
        "kafka": {
            "key": {"type": "string", "description": "The conversation id (UTF-8)"},
            "bindingVersion": "0.5.0",
        }
    }
    messages: dict[str, Any] = {
        _message_name(event_type): {
            "name": event_type.value,
            "title": event_type.value,
            "contentType": "application/cloudevents+json",
            "payload": {"$ref": f"{event_type.value}.json"},
            "bindings": kafka_key,
        }
        for event_type in EventType
    }
    messages["EventBatch"] = {
        "name": "batch",
        "title": "A batch of CloudEvents",
        "summary": f"A JSON array of at most {MAX_BATCH_EVENTS} CloudEvents; each stands alone.",
        "contentType": "application/cloudevents-batch+json",
        "payload": {
            "type": "array",
            "maxItems": MAX_BATCH_EVENTS,
            "items": {"oneOf": [{"$ref": f"{event_type.value}.json"} for event_type in EventType]},
        },
        "bindings": kafka_key,
    }
    messages["DeadLetter"] = {
        "name": "dead-letter",
        "title": "A rejected record or event",
        "summary": "The rejected record's value, or the rejected event's own bytes in a batch.",
        "headers": {
            "type": "object",
            "required": [h.value for h in DeadLetterHeader if h not in OPTIONAL_HEADERS],
            "properties": {
                DeadLetterHeader.ORIGIN_TOPIC.value: {"type": "string"},
                DeadLetterHeader.ORIGIN_PARTITION.value: {"type": "string", "pattern": "^[0-9]+$"},
                DeadLetterHeader.ORIGIN_OFFSET.value: {"type": "string", "pattern": "^[0-9]+$"},
                DeadLetterHeader.REASON.value: {
                    "enum": [reason.value for reason in DeadLetterReason]
                },
                DeadLetterHeader.ERROR.value: {"type": "string", "maxLength": 1024},
                DeadLetterHeader.TRUNCATED.value: {
                    "type": "string",
                    "pattern": "^[0-9]+$",
                    "description": "The payload was cut to fit; its original size in bytes.",
                },
                DeadLetterHeader.KEY_TRUNCATED.value: {
                    "type": "string",
                    "pattern": "^[0-9]+$",
                    "description": "The key was cut to fit; its original size in bytes.",
                },
                DeadLetterHeader.ORIGIN_EVENT.value: {
                    "type": "string",
                    "pattern": "^[0-9]+$",
                    "description": "For an event of a batch: its position in the batch, from 0.",
                },
                DeadLetterHeader.HEADERS_TRUNCATED.value: {
                    "type": "string",
                    "pattern": "^[0-9]+$",
                    "description": "The origin's ce_ headers (over 8 KiB) were left out: their "
                    "size in bytes. Otherwise a letter carries them, and content-type.",
                },
            },
        },
    }
    messages["BinaryEvent"] = {
        "name": "binary",
        "title": "A CloudEvent in binary content mode",
        "summary": "The event's data as the value; its attributes in ce_ headers (a record "
        "with ce_specversion and no application/cloudevents content-type).",
        "contentType": "application/json",
        "headers": {
            "type": "object",
            "required": [f"ce_{name}" for name in BINARY_REQUIRED],
            "properties": {f"ce_{name}": {"type": "string"} for name in BINARY_REQUIRED},
        },
        "payload": {"type": "object", "description": "The event's data, as in its type's schema."},
        "bindings": kafka_key,
    }
    channel_messages = {name: {"$ref": f"#/components/messages/{name}"} for name in messages}
    dead_letter = channel_messages.pop("DeadLetter")
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "roi-metrics support events",
            "version": __version__,
            "description": (
                "Conversation events of AI customer support, one Kafka topic per channel. "
                f"Records are at most {MAX_RECORD_BYTES} bytes; larger ones are dead-lettered."
            ),
        },
        "defaultContentType": "application/cloudevents+json",
        "channels": {
            "channelEvents": {
                "address": DEFAULT_TOPIC_PREFIX + "{channel}",
                "description": "One topic per channel; the prefix is a setting.",
                "parameters": {
                    "channel": {
                        "description": f"The channel name; matches {CHANNEL_PATTERN}",
                        "examples": ["whatsapp", "slack", "web-chat"],
                    }
                },
                "messages": channel_messages,
            },
            "deadLetters": {
                "address": DEAD_LETTER_TOPIC,
                "description": "One record per rejected input record or rejected event.",
                "messages": {"DeadLetter": dead_letter},
            },
        },
        "operations": {
            "consumeChannelEvents": {
                "action": "receive",
                "channel": {"$ref": "#/channels/channelEvents"},
                "summary": "The worker counts every valid event once.",
            },
            "publishDeadLetters": {
                "action": "send",
                "channel": {"$ref": "#/channels/deadLetters"},
                "summary": "The worker dead-letters what it cannot count.",
            },
        },
        "components": {"messages": messages},
    }


def render() -> dict[str, str]:
    """File name -> exact text of every generated file."""
    files = {
        f"{event_type.value}.json": json.dumps(event_schema(event_type), indent=2) + "\n"
        for event_type in EventType
    }
    files["asyncapi.yaml"] = yaml.safe_dump(asyncapi(), sort_keys=False, width=100)
    return files


def drift(directory: Path) -> list[str]:
    """Names of generated files that are missing or differ in `directory`."""
    stale = []
    for name, text in render().items():
        path = directory / name
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            stale.append(name)
    return stale


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dir", type=Path, default=DEFAULT_DIR, help="output folder")
    parser.add_argument("--check", action="store_true", help="fail if the files differ")
    args = parser.parse_args(argv)
    if args.check:
        stale = drift(args.dir)
        for name in stale:
            print(f"{args.dir / name}: out of date; run `make schemas`", file=sys.stderr)
        return 1 if stale else 0
    args.dir.mkdir(parents=True, exist_ok=True)
    for name, text in render().items():
        (args.dir / name).write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
