"""Creating topics (the worker's dead-letter topic, `channel add`, the simulator's channels)
without importing Faust."""

from __future__ import annotations

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import TopicAlreadyExistsError

from roi_metrics.settings import Settings


class TopicCreationError(Exception):
    """The broker refused to create a topic (its error code and message)."""


async def ensure_topic(settings: Settings, name: str, partitions: int = 1) -> bool:
    """Create topic `name` unless it exists; True when it was created."""
    admin = AIOKafkaAdminClient(**settings.kafka_client_options())
    await admin.start()
    try:
        if name in await admin.list_topics():
            return False
        topic = NewTopic(name, partitions, settings.topic_replication_factor)
        response = await admin.create_topics([topic])
        for _, code, *message in getattr(response, "topic_errors", []):
            if code not in (0, TopicAlreadyExistsError.errno):
                raise TopicCreationError(f"error {code} {message}")
        return True
    finally:
        await admin.close()


async def topic_config(settings: Settings, topic: str, name: str) -> str | None:
    """One configuration value of `topic` (e.g. max.message.bytes), None if not found."""
    admin = AIOKafkaAdminClient(**settings.kafka_client_options())
    await admin.start()
    try:
        resource = ConfigResource(ConfigResourceType.TOPIC, topic, {name: None})
        for response in await admin.describe_configs([resource]):
            for _, _, _, _, entries in response.resources:
                for entry in entries:
                    if entry[0] == name:
                        return str(entry[1]) if entry[1] is not None else None
        return None
    finally:
        await admin.close()
