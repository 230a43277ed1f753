"""The worker's pure helpers: which topics are channels, and Kafka credentials for Faust."""

import faust
from pydantic import SecretStr
from roi_metrics.domain.channels import not_channel_topics
from roi_metrics.settings import Settings
from roi_metrics.worker.app import broker_credentials
from roi_metrics.worker.monitor import channel_topics


def test_only_prefix_plus_a_valid_channel_name_is_a_channel_topic() -> None:
    names = {
        "support.events.whatsapp",
        "support.events.web-chat",
        "support.events.voice_2",
        "support.events.",  # no channel
        "support.events.WhatsApp",  # upper case
        "support.events._internal",  # must start with a letter or digit
        "support.events." + "x" * 33,  # 33 characters: one too many
        "support.deadletter",
        "roi-metrics-__assignor-__leader",
    }
    assert channel_topics(names, "support.events.") == [
        "support.events.voice_2",
        "support.events.web-chat",
        "support.events.whatsapp",
    ]
    # the others under the prefix are told (nothing reads them), the rest is not ours
    assert not_channel_topics(names, "support.events.") == sorted(
        [
            "support.events.",
            "support.events.WhatsApp",
            "support.events._internal",
            "support.events." + "x" * 33,
        ]
    )


def test_broker_credentials_follow_the_security_protocol() -> None:
    assert broker_credentials(Settings(kafka_security_protocol="PLAINTEXT")) is None
    assert isinstance(
        broker_credentials(Settings(kafka_security_protocol="SSL")), faust.SSLCredentials
    )
    sasl = broker_credentials(
        Settings(
            kafka_security_protocol="SASL_SSL",
            kafka_sasl_mechanism="SCRAM-SHA-256",
            kafka_sasl_username="roi",
            kafka_sasl_password=SecretStr("s3cret"),
        )
    )
    assert isinstance(sasl, faust.SASLCredentials)
    assert (sasl.username, sasl.password, sasl.mechanism.value) == (
        "roi",
        "s3cret",
        "SCRAM-SHA-256",
    )
    assert sasl.ssl_context is not None
