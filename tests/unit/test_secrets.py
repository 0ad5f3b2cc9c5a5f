"""Secrets (passwords, API keys, DSNs, the operator token) are never shown, and can come from files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from domain.resilience import CALL_LIMIT_FIELDS
from streams.app import llm_config, merchant_provider_config
from streams.kafka_security import kafka_client_options
from streams.settings import Settings

SECRETS = {
    "postgres_dsn": "postgresql://payee:pg-dsn-secret@127.0.0.1:5432/payees",
    "postgres_password": "pg-password-secret",
    "llm_api_key": "sk-llm-secret",
    "kafka_sasl_password": "kafka-sasl-secret",
    "operator_token": "operator-secret-for-the-test",
}


def secret_settings(**overrides: object) -> Settings:
    return Settings(
        kafka_security_protocol="SASL_PLAINTEXT", kafka_sasl_username="payee-stream", **{**SECRETS, **overrides}
    )


def shown(text: str) -> list[str]:
    return [value for value in ("pg-dsn-secret", "pg-password-secret", "sk-llm-secret", "kafka-sasl-secret", "operator-secret-for-the-test") if value in text]


def test_secrets_are_not_in_repr_str_or_dumps():
    settings = secret_settings()
    assert shown(repr(settings)) == []
    assert shown(str(settings)) == []
    assert shown(settings.model_dump_json()) == []
    assert shown(json.dumps(settings.model_dump(mode="json"))) == []
    # A child process (the dev command's worker) is given the values themselves.
    env = settings.as_env()
    assert env["PAYEE_STREAM_POSTGRES_DSN"] == SECRETS["postgres_dsn"]
    assert env["PAYEE_STREAM_OPERATOR_TOKEN"] == SECRETS["operator_token"]
    with pytest.MonkeyPatch.context() as patched:  # ... and reads them back from its environment
        for name, value in env.items():
            patched.setenv(name, value)
        assert Settings() == settings


def test_secrets_come_from_named_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    (tmp_path / "dsn").write_text(SECRETS["postgres_dsn"] + "\n")  # a trailing newline, as files have
    (tmp_path / "key").write_text(SECRETS["llm_api_key"])
    monkeypatch.setenv("PAYEE_STREAM_POSTGRES_DSN_FILE", str(tmp_path / "dsn"))
    monkeypatch.setenv("PAYEE_STREAM_LLM_API_KEY_FILE", str(tmp_path / "key"))
    (tmp_path / "token").write_text(SECRETS["operator_token"])
    monkeypatch.setenv("PAYEE_STREAM_OPERATOR_TOKEN_FILE", str(tmp_path / "token"))  # an optional secret
    monkeypatch.setenv("PAYEE_STREAM_LOG_LEVEL_FILE", str(tmp_path / "token"))  # not a secret: ignored
    settings = Settings()
    assert settings.operator_token.get_secret_value() == SECRETS["operator_token"]
    assert settings.log_level == "INFO"
    assert settings.postgres_dsn.get_secret_value() == SECRETS["postgres_dsn"]
    assert settings.llm_api_key.get_secret_value() == SECRETS["llm_api_key"]
    monkeypatch.setenv("PAYEE_STREAM_LLM_API_KEY", "from-the-environment")
    assert Settings().llm_api_key.get_secret_value() == "from-the-environment"  # the variable wins


def test_secrets_come_from_a_mounted_secrets_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    # A Kubernetes secret mounted as a directory: one file per key.
    (tmp_path / "PAYEE_STREAM_KAFKA_SASL_PASSWORD").write_text(SECRETS["kafka_sasl_password"])
    (tmp_path / "PAYEE_STREAM_OPERATOR_TOKEN").write_text(SECRETS["operator_token"])
    (tmp_path / "PAYEE_STREAM_LOG_LEVEL").write_text("DEBUG")  # not a secret: ignored
    monkeypatch.setenv("PAYEE_STREAM_SECRETS_DIR", str(tmp_path))
    monkeypatch.setenv("PAYEE_STREAM_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("PAYEE_STREAM_KAFKA_SASL_USERNAME", "payee-stream")
    settings = Settings()
    assert settings.kafka_sasl_password.get_secret_value() == SECRETS["kafka_sasl_password"]
    assert settings.operator_token.get_secret_value() == SECRETS["operator_token"]
    assert settings.log_level == "INFO"
    assert kafka_client_options(settings)["sasl_plain_password"] == SECRETS["kafka_sasl_password"]


def test_an_invalid_setting_at_startup_does_not_show_the_secrets(monkeypatch: pytest.MonkeyPatch):
    # The model validator's error: pydantic would print input_value, the tail of every input.
    env = {
        "PAYEE_STREAM_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",  # without credentials: refused
        "PAYEE_STREAM_POSTGRES_DSN": SECRETS["postgres_dsn"],
        "PAYEE_STREAM_POSTGRES_PASSWORD": SECRETS["postgres_password"],
        "PAYEE_STREAM_LLM_API_KEY": SECRETS["llm_api_key"],
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError) as failure:
        Settings()
    assert "needs kafka_sasl_username and kafka_sasl_password" in str(failure.value)
    assert shown(str(failure.value)) == [] and shown(repr(failure.value)) == []
    # What an operator sees: the CLI's startup error, printed before logging is configured.
    cli = subprocess.run(
        [sys.executable, "-m", "streams.cli", "schemas", "export", "--out", "unused"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert cli.returncode != 0 and "needs kafka_sasl_username" in cli.stderr
    assert shown(cli.stderr) == [] and shown(cli.stdout) == []


def test_each_clients_limits_come_from_its_own_settings():
    distinct = {limit: 100 + n for n, limit in enumerate(CALL_LIMIT_FIELDS)}  # no two alike
    settings = Settings(
        llm_base_url="http://llm.example/v1", merchant_provider="track", track_base_url="http://track.example",
        **{f"llm_{limit}": value for limit, value in distinct.items()},
        **{f"track_{limit}": value + 50 for limit, value in distinct.items()},
    )
    llm, track = llm_config(settings), merchant_provider_config(settings)
    assert llm is not None and track is not None
    assert {limit: getattr(llm, limit) for limit in CALL_LIMIT_FIELDS} == distinct
    assert {limit: getattr(track, limit) for limit in CALL_LIMIT_FIELDS} == {k: v + 50 for k, v in distinct.items()}
