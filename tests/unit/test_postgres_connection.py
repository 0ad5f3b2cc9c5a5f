"""PostgreSQL TLS settings: a combination whose TLS files the connection would not use is refused."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
from pydantic import ValidationError

from streams.postgres import postgres_ssl
from streams.settings import Settings

CA, CERT, KEY = Path("/etc/pg/ca.pem"), Path("/etc/pg/client.pem"), Path("/etc/pg/client.key")


@pytest.mark.parametrize("mode", [None, "disable", "allow", "prefer", "require"])
def test_a_root_ca_without_a_verifying_mode_is_refused(mode: str | None) -> None:
    with pytest.raises(ValidationError, match="postgres_ssl_rootcert is checked only with"):
        Settings(postgres_sslmode=mode, postgres_ssl_rootcert=CA)


@pytest.mark.parametrize("mode", [None, "disable", "allow", "prefer"])
def test_a_client_certificate_without_certain_tls_is_refused(mode: str | None) -> None:
    with pytest.raises(ValidationError, match="postgres_ssl_cert needs postgres_sslmode"):
        Settings(postgres_sslmode=mode, postgres_ssl_cert=CERT, postgres_ssl_key=KEY)


@pytest.mark.parametrize("mode", ["verify-ca", "verify-full"])
def test_a_root_ca_with_a_verifying_mode_is_used(mode: str, monkeypatch: pytest.MonkeyPatch) -> None:
    loaded: list[str | None] = []
    monkeypatch.setattr(ssl, "create_default_context", lambda cafile=None: loaded.append(cafile) or ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT))
    context = postgres_ssl(Settings(postgres_sslmode=mode, postgres_ssl_rootcert=CA))
    assert isinstance(context, ssl.SSLContext) and loaded == [str(CA)]
    assert context.check_hostname == (mode == "verify-full")


def test_modes_without_files_are_left_to_asyncpg() -> None:
    for mode in (None, "disable", "allow", "prefer", "require"):
        assert postgres_ssl(Settings(postgres_sslmode=mode)) == mode
