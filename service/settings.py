"""One frozen settings object, read from the environment with the prefix ROI_.

Secrets (the Kafka SASL password, the Redis URL's password) are SecretStr: never logged,
shown masked by `describe()`. KAFKA_BOOTSTRAP_SERVERS and REDIS_URL are honoured too, as
the local stack scripts honour them.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from service.contract import DEAD_LETTER_TOPIC, DEFAULT_TOPIC_PREFIX

DAY_SECONDS = 86_400


class Settings(BaseSettings):
    """Everything the worker and exporter can be told; every field has a sane default for
    the local stack."""

    model_config = SettingsConfigDict(env_prefix="ROI_", frozen=True, extra="ignore")

    kafka_bootstrap_servers: str = Field(
        default="127.0.0.1:19092",
        validation_alias=AliasChoices("ROI_KAFKA_BOOTSTRAP_SERVERS", "KAFKA_BOOTSTRAP_SERVERS"),
    )
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = "SCRAM-SHA-512"
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_cafile: Path | None = None
    redis_url: SecretStr = Field(
        default=SecretStr("redis://127.0.0.1:16379/0"),
        validation_alias=AliasChoices("ROI_REDIS_URL", "REDIS_URL"),
        description="redis:// or rediss:// (TLS); a password may be in the URL",
    )
    redis_password: SecretStr | None = None
    topic_prefix: str = DEFAULT_TOPIC_PREFIX
    dead_letter_topic: str = DEAD_LETTER_TOPIC
    topic_replication_factor: int = Field(default=1, ge=1, le=7)
    """For the topics the service creates (dead letters, `channel add`); 3 in production."""
    group_id: str = "roi-metrics"
    cost_card: Path = Path("deploy/costs.toml")
    max_lateness_seconds: int = Field(default=7 * DAY_SECONDS, gt=0, le=30 * DAY_SECONDS)
    dedup_horizon_seconds: int = Field(default=DAY_SECONDS, gt=0)
    conversation_ttl_seconds: int = Field(default=30 * DAY_SECONDS, gt=0)
    batch_max_records: int = Field(default=500, ge=1, le=100_000)
    batch_wait_seconds: float = Field(default=0.2, gt=0, le=60)
    discovery_interval_seconds: float = Field(default=5.0, gt=0, le=60)
    consumer_session_timeout_seconds: float = Field(default=30.0, ge=6, le=300)
    consumer_heartbeat_seconds: float = Field(default=3.0, gt=0, le=60)
    rebalance_timeout_seconds: float = Field(default=60.0, gt=0, le=600)
    data_dir: Path = Path(".state/worker")
    """Where Faust keeps its small local files."""
    worker_host: str = "127.0.0.1"
    worker_port: int = Field(default=19465, ge=1, le=65535)
    exporter_host: str = "127.0.0.1"
    exporter_port: int = Field(default=19464, ge=1, le=65535)

    @field_validator("topic_prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        if not value or any(char.isspace() for char in value):
            raise ValueError("must be a non-empty topic name prefix without spaces")
        return value

    @model_validator(mode="after")
    def _sasl(self) -> Settings:
        if self.kafka_security_protocol.startswith("SASL") and not (
            self.kafka_sasl_username and self.kafka_sasl_password
        ):
            raise ValueError(
                "kafka_sasl_username and kafka_sasl_password are required with "
                f"kafka_security_protocol={self.kafka_security_protocol}"
            )
        scheme = urlsplit(self.redis_url.get_secret_value()).scheme
        if scheme not in ("redis", "rediss", "unix"):
            raise ValueError("redis_url must start with redis://, rediss:// or unix://")
        return self

    def ssl_context(self) -> ssl.SSLContext | None:
        """A TLS context for Kafka when the protocol uses TLS, else None."""
        if self.kafka_security_protocol not in ("SSL", "SASL_SSL"):
            return None
        cafile = str(self.kafka_ssl_cafile) if self.kafka_ssl_cafile else None
        return ssl.create_default_context(cafile=cafile)

    def kafka_client_options(self) -> dict[str, Any]:
        """Keyword arguments for aiokafka clients (producer, admin)."""
        options: dict[str, Any] = {
            "bootstrap_servers": self.kafka_bootstrap_servers,
            "security_protocol": self.kafka_security_protocol,
        }
        context = self.ssl_context()
        if context is not None:
            options["ssl_context"] = context
        if self.kafka_security_protocol.startswith("SASL"):
            assert self.kafka_sasl_password is not None
            options["sasl_mechanism"] = self.kafka_sasl_mechanism
            options["sasl_plain_username"] = self.kafka_sasl_username
            options["sasl_plain_password"] = self.kafka_sasl_password.get_secret_value()
        return options

    def redis_options(self) -> dict[str, Any]:
        """Keyword arguments for redis.asyncio.Redis.from_url besides the URL."""
        options: dict[str, Any] = {}
        if self.redis_password is not None:
            options["password"] = self.redis_password.get_secret_value()
        return options

    def describe(self) -> dict[str, str]:
        """Every setting as text, secrets masked (for the start-up banner)."""
        shown = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr):
                text = _mask_url(value.get_secret_value()) if name == "redis_url" else "********"
            else:
                text = "" if value is None else str(value)
            shown[name] = text
        return shown


def _mask_url(url: str) -> str:
    """The URL with any password replaced by ****."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return urlunsplit(parts._replace(netloc=f"{user}:****@{host}{port}"))
