"""Settings: defaults, validation with one clear line, secrets never shown."""

import ssl
from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError
from typer.testing import CliRunner

from service.cli import app
from service.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def test_defaults_point_at_the_local_stack(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "KAFKA_BOOTSTRAP_SERVERS",
        "REDIS_URL",
        "ROI_KAFKA_BOOTSTRAP_SERVERS",
        "ROI_REDIS_URL",
    ):
        monkeypatch.delenv(name, raising=False)
    settings = Settings()
    assert settings.kafka_bootstrap_servers == "127.0.0.1:19092"
    assert settings.redis_url.get_secret_value() == "redis://127.0.0.1:16379/0"
    assert settings.kafka_client_options() == {
        "bootstrap_servers": "127.0.0.1:19092",
        "security_protocol": "PLAINTEXT",
    }


def test_the_unprefixed_variables_of_the_stack_scripts_are_honoured(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("ROI_KAFKA_BOOTSTRAP_SERVERS", raising=False)
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "kafka-1:9092,kafka-2:9092")
    assert Settings().kafka_bootstrap_servers == "kafka-1:9092,kafka-2:9092"


def test_sasl_ssl_with_scram_and_a_ca_file(tmp_path: Path) -> None:
    settings = Settings(
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_mechanism="SCRAM-SHA-256",
        kafka_sasl_username="roi",
        kafka_sasl_password=SecretStr("s3cret"),
    )
    options = settings.kafka_client_options()
    assert isinstance(options.pop("ssl_context"), ssl.SSLContext)
    assert options == {
        "bootstrap_servers": "127.0.0.1:19092",
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-256",
        "sasl_plain_username": "roi",
        "sasl_plain_password": "s3cret",
    }


def test_sasl_without_credentials_is_refused() -> None:
    with pytest.raises(
        ValidationError, match="kafka_sasl_username and kafka_sasl_password are required"
    ):
        Settings(kafka_security_protocol="SASL_SSL")


def test_secrets_are_masked_in_the_banner() -> None:
    settings = Settings(
        redis_url=SecretStr("rediss://default:hunter2@redis.example:6380/0"),
        kafka_security_protocol="SASL_PLAINTEXT",
        kafka_sasl_username="roi",
        kafka_sasl_password=SecretStr("s3cret"),
    )
    shown = settings.describe()
    assert shown["redis_url"] == "rediss://default:****@redis.example:6380/0"
    assert shown["kafka_sasl_password"] == "********"
    assert "hunter2" not in repr(settings) and "s3cret" not in repr(settings)


def test_worker_refuses_a_bad_setting_with_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROI_MAX_LATENESS_SECONDS", "99999999")
    result = CliRunner().invoke(app, ["worker"])
    assert result.exit_code == 2
    assert result.stderr == (
        "error: ROI_MAX_LATENESS_SECONDS: Input should be less than or equal to 2592000\n"
    )


def test_worker_refuses_a_bad_cost_card_with_one_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    card = tmp_path / "costs.toml"
    card.write_text((ROOT / "deploy/costs.toml").read_text().replace('currency = "USD"', ""))
    monkeypatch.setenv("ROI_COST_CARD", str(card))
    result = CliRunner().invoke(app, ["worker"])
    assert result.exit_code == 2
    assert (
        result.stderr
        == f"error: {card}: currency: missing (set ROI_COST_CARD to use another file)\n"
    )


def test_every_setting_is_documented() -> None:
    documented = (ROOT / "docs" / "configuration.md").read_text()
    for name in Settings.model_fields:
        assert f"`ROI_{name.upper()}`" in documented, name
