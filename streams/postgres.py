"""The one way to open PostgreSQL connections: ``connect`` and ``create_pool`` from settings.

The sink, migrations, ``audit show`` and ``suppliers sync`` connect through these (anything else
that opens PostgreSQL must too), so the DSN, password and TLS settings (``postgres_sslmode``,
``postgres_ssl_rootcert``, a client certificate; the settings refuse combinations that would
leave one unused) apply everywhere. Every connection's ``search_path`` is
``settings.postgres_schema``.
"""

from __future__ import annotations

import ssl
from typing import Any

import asyncpg

from streams.settings import Settings

CONNECT_TIMEOUT_S = 10.0


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def server_settings(settings: Settings) -> dict[str, str]:
    return {"search_path": quote_ident(settings.postgres_schema), "application_name": settings.app_id}


def postgres_ssl(settings: Settings) -> ssl.SSLContext | str | None:
    """asyncpg's ``ssl`` argument: None leaves it to the DSN (libpq's default, ``prefer``).

    verify-ca and verify-full check the server's certificate against ``postgres_ssl_rootcert``
    (or the system's CAs); verify-full also checks the host name, as libpq does.
    """
    mode = settings.postgres_sslmode
    client_cert = settings.postgres_ssl_cert, settings.postgres_ssl_key
    if mode in (None, "disable", "allow", "prefer") or (mode == "require" and not client_cert[0]):
        return mode  # a client certificate only matters on a connection that must be TLS
    if mode == "require":  # encrypted, the server's certificate not checked (libpq's meaning)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    else:
        rootcert = settings.postgres_ssl_rootcert
        context = ssl.create_default_context(cafile=str(rootcert) if rootcert else None)
        context.check_hostname = mode == "verify-full"
    if client_cert[0] and client_cert[1]:
        context.load_cert_chain(str(client_cert[0]), str(client_cert[1]))
    return context


def connect_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments, besides the DSN, for ``asyncpg.connect`` and ``asyncpg.create_pool``."""
    options: dict[str, Any] = {"server_settings": server_settings(settings)}
    if settings.postgres_password is not None:
        options["password"] = settings.postgres_password.get_secret_value()
    tls = postgres_ssl(settings)
    if tls is not None:
        options["ssl"] = tls
    return options


async def connect(settings: Settings) -> asyncpg.Connection:
    return await asyncpg.connect(
        settings.postgres_dsn.get_secret_value(), timeout=CONNECT_TIMEOUT_S, **connect_options(settings)
    )


async def connect_dsn(dsn: str) -> asyncpg.Connection:
    """A connection to another database (a supplier master): its DSN says how, TLS included
    (``sslmode``, ``sslrootcert``), and none of payee-stream's own connection settings apply."""
    return await asyncpg.connect(dsn, timeout=CONNECT_TIMEOUT_S)


async def create_pool(settings: Settings, **pool_options: Any) -> asyncpg.Pool:
    return await asyncpg.create_pool(
        settings.postgres_dsn.get_secret_value(), **connect_options(settings), **pool_options
    )
