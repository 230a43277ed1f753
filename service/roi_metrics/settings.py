"""One frozen settings object, read from the environment with the prefix ROI_.

Secrets (the Kafka SASL password, the Redis password, the Redis URL whole: its password may
be in the user information or in a `password` query parameter) are SecretStr: never logged,
shown masked by `describe()`; `redact()` takes them out of any other text (an error message,
a log line). KAFKA_BOOTSTRAP_SERVERS and REDIS_URL are honoured too, as the local stack
scripts honour them.
"""

from __future__ import annotations

import os
import re
import ssl
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qs, unquote, unquote_plus, urlsplit

from pydantic import (
    AliasChoices,
    Field,
    FilePath,
    SecretStr,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from roi_metrics.domain.channels import DEAD_LETTER_TOPIC, DEFAULT_TOPIC_PREFIX, channel_of_topic

DAY_SECONDS = 86_400
MASK = "****"
SECRET_PARAMETER = re.compile(r"pass|pwd|secret|token", re.IGNORECASE)
"""Query parameters whose value is masked in a URL: `password`, `PASSWORD`, `sentinel_password`."""


class Settings(BaseSettings):
    """Everything the worker and exporter can be told; every field has a sane default for
    the local stack."""

    model_config = SettingsConfigDict(env_prefix="ROI_", frozen=True, extra="ignore")

    kafka_bootstrap_servers: str = Field(
        default_factory=lambda: f"127.0.0.1:{os.environ.get('ROI_KAFKA_PORT') or 19092}",
        validation_alias=AliasChoices("ROI_KAFKA_BOOTSTRAP_SERVERS", "KAFKA_BOOTSTRAP_SERVERS"),
    )
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = "SCRAM-SHA-512"
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_cafile: FilePath | None = None
    """The CA bundle that signed the brokers' certificates; the system's when unset."""
    kafka_ssl_certfile: FilePath | None = None
    """A client certificate (PEM, chain allowed) for brokers that require one (mTLS)."""
    kafka_ssl_keyfile: FilePath | None = None
    """The client certificate's private key (PEM); with kafka_ssl_certfile."""
    kafka_ssl_key_password: SecretStr | None = None
    redis_url: SecretStr = Field(
        default_factory=lambda: SecretStr(
            f"redis://127.0.0.1:{os.environ.get('ROI_REDIS_PORT') or 16379}/0"
        ),
        validation_alias=AliasChoices("ROI_REDIS_URL", "REDIS_URL"),
        description="redis:// or rediss:// (TLS); a password may be in the URL",
    )
    redis_password: SecretStr | None = None
    redis_ssl_cafile: FilePath | None = None
    """With rediss://: the CA bundle that signed the server's certificate; the system's when
    unset."""
    redis_ssl_certfile: FilePath | None = None
    """With rediss://: a client certificate, for a server that requires one."""
    redis_ssl_keyfile: FilePath | None = None
    redis_ssl_key_password: SecretStr | None = None
    redis_cluster: bool = False
    """ROI_REDIS_URL names a node of a Redis Cluster (any one: the client finds the rest)."""
    redis_wait_replicas: int = Field(default=0, ge=0, le=16)
    """Replicas that must confirm a batch's writes before its offsets are acknowledged (Redis
    WAIT). 0: acknowledge once the master has them; a master lost before it replicated them
    then loses them. 1 or more: nothing acknowledged is lost with one master, but the worker
    waits (not ready) while a master has fewer replicas (docs/production.md)."""
    redis_wait_timeout_seconds: float = Field(default=1.0, ge=0.01, le=60, allow_inf_nan=False)
    """How long one WAIT may take before the batch is read and tried again."""
    topic_prefix: str = DEFAULT_TOPIC_PREFIX
    dead_letter_topic: str = DEAD_LETTER_TOPIC
    customer_topic: str = "support.customers"
    """The internal topic of customer facts (CONTRACT.md §9), keyed by customer; created by
    the worker with `customer_topic_partitions` partitions."""
    customer_topic_partitions: int = Field(default=6, ge=1, le=1000)
    recontact_window_seconds: int = Field(default=7 * DAY_SECONDS, gt=0, le=90 * DAY_SECONDS)
    """A customer's new conversation this long after an AI resolution revokes it (§9)."""
    topic_replication_factor: int = Field(default=1, ge=1, le=7)
    """For the topics the service creates (dead letters, `channel add`); 3 in production."""
    group_id: str = Field(default="roi-metrics", min_length=1, max_length=249)
    cost_card: Path = Path("deploy/costs.toml")
    max_lateness_seconds: int = Field(default=7 * DAY_SECONDS, gt=0, le=30 * DAY_SECONDS)
    dedup_horizon_seconds: int = Field(default=DAY_SECONDS, gt=0, le=90 * DAY_SECONDS)
    conversation_ttl_seconds: int = Field(default=30 * DAY_SECONDS, gt=0, le=365 * DAY_SECONDS)
    batch_max_records: int = Field(default=500, ge=1, le=100_000)
    batch_max_bytes: int = Field(default=8 * 1024 * 1024, ge=64 * 1024, le=1024**3)
    """A batch is applied once it holds this many bytes of keys, values and headers (a larger
    record still makes a batch of its own)."""
    batch_wait_seconds: float = Field(default=0.2, gt=0, le=60, allow_inf_nan=False)
    max_channels: int = Field(default=200, ge=1, le=100_000)
    """Channels known at most; events of further channels are dead-lettered channel_limit."""
    stall_seconds: float = Field(default=20.0, ge=2, le=600, allow_inf_nan=False)
    """A worker that stops counting for this long (Redis answering) exits to be restarted."""
    discovery_interval_seconds: float = Field(default=5.0, gt=0, le=60, allow_inf_nan=False)
    consumer_session_timeout_seconds: float = Field(default=30.0, ge=6, le=300, allow_inf_nan=False)
    consumer_heartbeat_seconds: float = Field(default=3.0, gt=0, le=60, allow_inf_nan=False)
    """Below a third of the session timeout (Kafka's advice; checked)."""
    consumer_fetch_wait_seconds: float = Field(default=0.9, ge=0.01, le=10, allow_inf_nan=False)
    """How long the broker may hold a fetch that finds no new record. Faust's 1.5 s held a
    channel's records back while a fetch for other partitions waited (p99 2.9 s at 1,000
    events/s); 0.1 s gave a 170 ms median but, in the runs so far, less throughput from a
    backlog of single-event records; 0.9 s keeps p99 near 1.2 s (docs/performance.md)."""
    rebalance_timeout_seconds: float = Field(default=60.0, gt=0, le=600, allow_inf_nan=False)
    data_dir: Path = Path(".state/worker")
    """Where Faust keeps its small local files."""
    worker_host: str = "127.0.0.1"
    worker_port: int = Field(default=19465, ge=1, le=65535)
    exporter_host: str = "127.0.0.1"
    exporter_port: int = Field(default=19464, ge=1, le=65535)

    @field_validator(
        "kafka_ssl_cafile",
        "kafka_ssl_certfile",
        "kafka_ssl_keyfile",
        "kafka_ssl_key_password",
        "redis_ssl_cafile",
        "redis_ssl_certfile",
        "redis_ssl_keyfile",
        "redis_ssl_key_password",
        "kafka_sasl_username",
        "kafka_sasl_password",
        "redis_password",
        mode="before",
    )
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        """`ROI_KAFKA_SSL_CAFILE=` (as an env file or `${X:-}` writes it) means unset."""
        return None if value == "" else value

    @field_validator("kafka_bootstrap_servers")
    @classmethod
    def _servers(cls, value: str) -> str:
        for server in value.split(","):
            host, _, port = server.strip().rpartition(":")
            if not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise ValueError(
                    f"must be host:port, or several separated by commas (found {server.strip()!r})"
                )
        return value

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
                "ROI_KAFKA_SASL_USERNAME and ROI_KAFKA_SASL_PASSWORD are required with "
                f"ROI_KAFKA_SECURITY_PROTOCOL={self.kafka_security_protocol}"
            )
        scheme = urlsplit(self.redis_url.get_secret_value()).scheme
        if scheme not in ("redis", "rediss", "unix"):
            raise ValueError("ROI_REDIS_URL must start with redis://, rediss:// or unix://")
        self._tls_files()
        if self.redis_cluster and scheme == "unix":
            raise ValueError("ROI_REDIS_CLUSTER needs a redis:// or rediss:// ROI_REDIS_URL")
        url = urlsplit(self.redis_url.get_secret_value())
        databases = {url.path.lstrip("/") or "0", *parse_qs(url.query).get("db", [])}
        if self.redis_cluster and databases != {"0"}:
            raise ValueError(
                "a Redis Cluster has database 0 only: end ROI_REDIS_URL with /0 (and no ?db=)"
            )
        if self.consumer_heartbeat_seconds * 3 > self.consumer_session_timeout_seconds:
            raise ValueError(
                f"ROI_CONSUMER_HEARTBEAT_SECONDS ({self.consumer_heartbeat_seconds:g}) must be "
                "at most a third of ROI_CONSUMER_SESSION_TIMEOUT_SECONDS "
                f"({self.consumer_session_timeout_seconds:g}): Kafka would take the worker for "
                "dead between two heartbeats"
            )
        if self.recontact_window_seconds > self.conversation_ttl_seconds:
            raise ValueError(
                f"ROI_RECONTACT_WINDOW_SECONDS ({self.recontact_window_seconds}) must not be "
                f"longer than ROI_CONVERSATION_TTL_SECONDS ({self.conversation_ttl_seconds}): "
                "a resolution would be forgotten before its window ends"
            )
        if channel_of_topic(self.customer_topic, self.topic_prefix) is not None or (
            self.customer_topic == self.dead_letter_topic
        ):
            raise ValueError(
                f"ROI_CUSTOMER_TOPIC {self.customer_topic!r} must be a topic of its own, "
                f"outside ROI_TOPIC_PREFIX {self.topic_prefix!r} and not the dead-letter topic"
            )
        if channel_of_topic(self.dead_letter_topic, self.topic_prefix) is not None:
            raise ValueError(
                f"ROI_DEAD_LETTER_TOPIC {self.dead_letter_topic!r} is a channel topic under "
                f"ROI_TOPIC_PREFIX {self.topic_prefix!r}: the worker would count its own dead "
                "letters (and dead-letter them again); give it a name outside the prefix"
            )
        return self

    def _tls_files(self) -> None:
        """TLS files make sense only with TLS, a certificate only with its key, a key's
        password only with the key."""
        kafka_tls = self.kafka_security_protocol in ("SSL", "SASL_SSL")
        kafka_files = (self.kafka_ssl_cafile, self.kafka_ssl_certfile, self.kafka_ssl_keyfile)
        if any(kafka_files) and not kafka_tls:
            raise ValueError(
                "ROI_KAFKA_SSL_* files need ROI_KAFKA_SECURITY_PROTOCOL SSL or SASL_SSL "
                f"(it is {self.kafka_security_protocol})"
            )
        redis_files = (self.redis_ssl_cafile, self.redis_ssl_certfile, self.redis_ssl_keyfile)
        if any(redis_files) and urlsplit(self.redis_url.get_secret_value()).scheme != "rediss":
            raise ValueError("ROI_REDIS_SSL_* files need a rediss:// ROI_REDIS_URL")
        for system in ("kafka", "redis"):
            certfile, keyfile, password = (
                getattr(self, f"{system}_ssl_{name}")
                for name in ("certfile", "keyfile", "key_password")
            )
            if bool(certfile) != bool(keyfile):
                prefix = f"ROI_{system.upper()}_SSL"
                raise ValueError(f"{prefix}_CERTFILE and {prefix}_KEYFILE go together")
            if password is not None and keyfile is None:
                prefix = f"ROI_{system.upper()}_SSL"
                raise ValueError(f"{prefix}_KEY_PASSWORD needs {prefix}_KEYFILE")

    def ssl_context(self) -> ssl.SSLContext | None:
        """A TLS context for Kafka when the protocol uses TLS, else None: the brokers'
        certificates checked against kafka_ssl_cafile (or the system's CAs) and their host
        names, and the client certificate presented when one is set. ValueError naming the
        variable when a file cannot be read or does not hold what it should."""
        if self.kafka_security_protocol not in ("SSL", "SASL_SSL"):
            return None
        return _client_context(
            self.kafka_ssl_cafile,
            self.kafka_ssl_certfile,
            self.kafka_ssl_keyfile,
            self.kafka_ssl_key_password,
        )

    def check_tls_files(self) -> None:
        """Read every TLS file as the clients will; ValueError naming the variable when one
        cannot be read or does not hold a certificate or key (never the key's password)."""
        self.ssl_context()
        if self.redis_ssl_cafile or self.redis_ssl_certfile:
            _client_context(
                self.redis_ssl_cafile,
                self.redis_ssl_certfile,
                self.redis_ssl_keyfile,
                self.redis_ssl_key_password,
                "REDIS",
            )

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
        files = {
            "ssl_ca_certs": self.redis_ssl_cafile,
            "ssl_certfile": self.redis_ssl_certfile,
            "ssl_keyfile": self.redis_ssl_keyfile,
        }
        options.update({name: str(path) for name, path in files.items() if path is not None})
        if self.redis_ssl_keyfile is not None:  # always a password: OpenSSL must never prompt
            password = self.redis_ssl_key_password
            options["ssl_password"] = password.get_secret_value() if password else ""
        return options

    def describe(self) -> dict[str, str]:
        """Every setting as text, secrets masked (for the start-up banner)."""
        shown = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr):
                text = mask_url(value.get_secret_value()) if name == "redis_url" else "********"
            else:
                text = "" if value is None else str(value)
            shown[name] = text
        return shown

    def secrets(self) -> list[str]:
        """Every secret these settings hold, as it may appear in a message: the passwords
        (as written in the Redis URL and decoded) and that URL whole when it holds one."""
        url = self.redis_url.get_secret_value()
        found = url_secrets(url)
        if found:
            found.append(url)
        for secret in (
            self.redis_password,
            self.redis_ssl_key_password,
            self.kafka_sasl_password,
            self.kafka_ssl_key_password,
        ):
            if secret is not None:
                found.append(secret.get_secret_value())
        return found

    def redact(self, text: str) -> str:
        """`text` without any of `secrets()`: the Redis URL shown masked, each password as
        ****. For error messages and log lines that might carry them."""
        url = self.redis_url.get_secret_value()
        return redact(text.replace(url, mask_url(url)) if url else text, self.secrets())


def _client_context(
    cafile: Path | None,
    certfile: Path | None,
    keyfile: Path | None,
    password: SecretStr | None,
    system: str = "KAFKA",
) -> ssl.SSLContext:
    """A client's TLS context: the CA bundle (the system's when None) and, when given, the
    client certificate. The key's password is always given, empty when unset, so OpenSSL
    never asks for one on the terminal (an encrypted key without it is an error, not a
    prompt that hangs a service). ValueError naming the variable when a file is unusable."""
    prefix = f"ROI_{system}_SSL"
    try:
        context = ssl.create_default_context(cafile=str(cafile) if cafile else None)
    except (OSError, ssl.SSLError) as error:
        raise ValueError(f"{prefix}_CAFILE: {_tls_problem(error, '')}") from None
    if certfile is not None:
        secret = password.get_secret_value() if password is not None else ""
        try:
            context.load_cert_chain(certfile, keyfile, password=lambda: secret)
        except (OSError, ValueError, ssl.SSLError) as error:
            hint = f"; if the key is encrypted, check {prefix}_KEY_PASSWORD"
            raise ValueError(
                f"{prefix}_CERTFILE, {prefix}_KEYFILE: {_tls_problem(error, hint)}"
            ) from None
    return context


def _tls_problem(error: OSError | ValueError | ssl.SSLError, hint: str) -> str:
    """What went wrong reading a TLS file, in words (never the key's password)."""
    if isinstance(error, ssl.SSLError):
        return f"not a usable certificate or key ({error.reason or error}){hint}"
    if isinstance(error, OSError):
        return f"cannot read {error.filename or 'a file'}: {error.strerror or error}"
    return str(error)  # e.g. a password longer than OpenSSL takes


def mask_url(url: str) -> str:
    """The URL with its password replaced by ****, wherever it is: in the user information
    (`redis://user:pw@host`, `rediss://:pw@host`) and in any query parameter whose name
    says password, secret or token, in any case (`?password=pw`, `?PassWord=pw`); the rest
    is kept as written. A URL that cannot be parsed is shown as its scheme and ****."""
    try:
        parts = urlsplit(url)
    except ValueError:
        scheme, separator, _ = url.partition("://")
        return f"{scheme}://{MASK}" if separator else MASK
    netloc = parts.netloc
    userinfo, at, host = netloc.rpartition("@")
    if at and ":" in userinfo:
        netloc = f"{userinfo.partition(':')[0]}:{MASK}@{host}"
    shown = f"{parts.scheme}:" if parts.scheme else ""
    if url[len(shown) :].startswith("//"):  # kept even when empty: unix:///run/redis.sock
        shown += f"//{netloc}"
    shown += parts.path
    if parts.query:
        shown += "?" + "&".join(_mask_parameter(p) for p in parts.query.split("&"))
    if parts.fragment:
        shown += f"#{parts.fragment}"
    return shown


def _mask_parameter(parameter: str) -> str:
    name, equals, value = parameter.partition("=")
    if equals and value and SECRET_PARAMETER.search(unquote_plus(name)):
        return f"{name}={MASK}"
    return parameter


def url_secrets(url: str) -> list[str]:
    """The passwords a URL holds (user information and secret query parameters), each as
    written and decoded; empty when it holds none; the URL whole when it cannot be parsed."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return [url]
    found: list[str] = []
    userinfo, at, _ = parts.netloc.rpartition("@")
    if at and ":" in userinfo:
        password = userinfo.partition(":")[2]
        found += [password, unquote(password)]
    for parameter in parts.query.split("&"):
        name, equals, value = parameter.partition("=")
        if equals and value and SECRET_PARAMETER.search(unquote_plus(name)):
            found += [value, unquote_plus(value), unquote(value)]
    return [secret for secret in found if secret]


def redact(text: str, secrets: Iterable[str]) -> str:
    """`text` with every occurrence of each secret replaced by **** (longest first, so a
    secret that contains another goes whole)."""
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text
