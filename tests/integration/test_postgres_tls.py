"""PostgreSQL over TLS, for real: a throwaway PostgreSQL instance of its own (``initdb`` +
``pg_ctl`` from Debian's PostgreSQL, on a free loopback port) serving a certificate the test made.
The shared server at 127.0.0.1:5432 is never touched.

Every connection of the project opens through streams/postgres.py, so these connections are
the sink's, the migrations', ``audit show``'s and ``suppliers sync``'s.
"""

from __future__ import annotations

import glob
import os
import shutil
import ssl
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest
from pydantic import SecretStr

from streams.db import migrate
from streams.embedded_broker import free_port
from streams.postgres import connect, create_pool
from streams.settings import Settings
from tests.tls import Pki, make_ca, make_pki

pytestmark = pytest.mark.integration

PASSWORD_ROLE = "payee_password_role"


def postgres_bin(name: str) -> str | None:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found[-1] if found else None


def as_postgres_user() -> list[str]:
    # initdb and postgres refuse to run as root.
    return ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []


class TlsPostgres:
    def __init__(self, directory: Path, pki: Pki) -> None:
        self.port = free_port()
        self.data = directory / "data"
        self._directory = directory
        self._pki = pki

    def start(self) -> TlsPostgres:
        directory = self._directory
        shutil.copy(self._pki.server_cert, directory / "server.crt")
        shutil.copy(self._pki.server_key, directory / "server.key")
        shutil.copy(self._pki.ca_cert, directory / "ca.crt")
        if os.geteuid() == 0:
            shutil.chown(directory, "postgres")
            for path in directory.iterdir():
                shutil.chown(path, "postgres")
        (directory / "server.key").chmod(0o600)
        run = as_postgres_user()
        subprocess.run(
            [*run, postgres_bin("initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8"],
            check=True,
            capture_output=True,
        )
        with open(self.data / "postgresql.conf", "a") as conf:
            conf.write(
                f"port = {self.port}\nlisten_addresses = '127.0.0.1, 127.0.0.2'\n"
                f"unix_socket_directories = '{directory}'\nssl = on\n"
                f"ssl_cert_file = '{directory / 'server.crt'}'\nssl_key_file = '{directory / 'server.key'}'\n"
                f"ssl_ca_file = '{directory / 'ca.crt'}'\nfsync = off\n"
            )
        # TLS only, over TCP: a plain connection is refused, so a connection that works used TLS.
        # The password role must give its password (SCRAM); every other role is trusted.
        (self.data / "pg_hba.conf").write_text(
            f"hostssl all {PASSWORD_ROLE} 127.0.0.0/8 scram-sha-256\n"
            "hostssl all all 127.0.0.0/8 trust\nhostnossl all all 127.0.0.0/8 reject\n"
        )
        subprocess.run(
            [*run, postgres_bin("pg_ctl"), "-D", str(self.data), "-l", str(directory / "log"), "-w", "start"],
            check=True,
            capture_output=True,
        )
        return self

    def stop(self) -> None:
        subprocess.run(
            [*as_postgres_user(), postgres_bin("pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop"],
            capture_output=True,
        )

    @property
    def dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def tls_postgres(pki: Pki) -> Iterator[TlsPostgres]:
    if postgres_bin("initdb") is None or (os.geteuid() == 0 and shutil.which("runuser") is None):
        pytest.skip("needs Debian's PostgreSQL server binaries")
    # Not under pytest's tmp_path: the postgres user cannot enter root's private temp directory.
    directory = Path(tempfile.mkdtemp(prefix="payee-stream-pg-tls-"))
    server = TlsPostgres(directory, pki)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(directory, ignore_errors=True)


def tls_settings(server: TlsPostgres, **overrides: object) -> Settings:
    return Settings(postgres_dsn=server.dsn, postgres_schema="tls_test", **overrides)


async def server_says_ssl(conn: asyncpg.Connection) -> bool:
    return await conn.fetchval("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")


async def test_verify_full_with_the_test_ca_connects_over_tls(tls_postgres: TlsPostgres, pki: Pki) -> None:
    settings = tls_settings(tls_postgres, postgres_sslmode="verify-full", postgres_ssl_rootcert=pki.ca_cert)
    conn = await connect(settings)
    try:
        assert await server_says_ssl(conn)
        applied = await migrate(conn, settings.postgres_schema)  # the migrations run over TLS too
        assert applied
    finally:
        await conn.close()
    pool = await create_pool(settings, min_size=1, max_size=1)  # the sink's pool
    try:
        async with pool.acquire() as pooled:
            assert await server_says_ssl(pooled)
            assert await pooled.fetchval("SELECT count(*) FROM schema_migrations") == len(applied)
    finally:
        await pool.close()


async def test_a_wrong_ca_is_refused(tls_postgres: TlsPostgres, tmp_path: Path) -> None:
    other_ca, _ = make_ca(tmp_path, "some other CA")
    settings = tls_settings(tls_postgres, postgres_sslmode="verify-full", postgres_ssl_rootcert=other_ca)
    with pytest.raises(ssl.SSLCertVerificationError):
        await connect(settings)


async def test_verify_full_checks_the_host_name_and_verify_ca_does_not(tls_postgres: TlsPostgres, pki: Pki) -> None:
    # The certificate names 127.0.0.1 and localhost, not this address the server also listens on.
    other_address = tls_postgres.dsn.replace("127.0.0.1", "127.0.0.2")
    full = Settings(postgres_dsn=other_address, postgres_sslmode="verify-full", postgres_ssl_rootcert=pki.ca_cert)
    with pytest.raises(ssl.SSLCertVerificationError):
        await connect(full)
    conn = await connect(full.model_copy(update={"postgres_sslmode": "verify-ca"}))
    try:
        assert await server_says_ssl(conn)
    finally:
        await conn.close()


async def test_the_dsn_alone_can_ask_for_tls(tls_postgres: TlsPostgres, pki: Pki) -> None:
    settings = Settings(postgres_dsn=f"{tls_postgres.dsn}?sslmode=verify-full&sslrootcert={pki.ca_cert}")
    conn = await connect(settings)
    try:
        assert await server_says_ssl(conn)
    finally:
        await conn.close()


async def test_a_plain_connection_is_refused_by_this_server(tls_postgres: TlsPostgres) -> None:
    with pytest.raises(asyncpg.InvalidAuthorizationSpecificationError):
        await connect(tls_settings(tls_postgres, postgres_sslmode="disable"))


async def test_a_client_certificate_is_presented(tls_postgres: TlsPostgres, pki: Pki) -> None:
    settings = tls_settings(
        tls_postgres,
        postgres_sslmode="verify-full",
        postgres_ssl_rootcert=pki.ca_cert,
        postgres_ssl_cert=pki.client_cert,
        postgres_ssl_key=pki.client_key,
    )
    conn = await connect(settings)
    try:
        client_dn = await conn.fetchval("SELECT client_dn FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        assert client_dn == "/CN=payee-stream"
    finally:
        await conn.close()


async def test_refused_credentials_are_reported_without_the_password(tls_postgres: TlsPostgres, pki: Pki) -> None:
    verified = {"postgres_sslmode": "verify-full", "postgres_ssl_rootcert": pki.ca_cert}
    admin = await connect(tls_settings(tls_postgres, **verified))
    try:
        await admin.execute(f"CREATE ROLE {PASSWORD_ROLE} LOGIN PASSWORD 'the-right-password'")
    finally:
        await admin.close()
    dsn = tls_postgres.dsn.replace("postgres@", f"{PASSWORD_ROLE}:dsn-wrong-password@")
    as_role = Settings(postgres_dsn=dsn, **verified)
    for settings in (as_role, as_role.model_copy(update={"postgres_password": SecretStr("setting-wrong-password")})):
        with pytest.raises(asyncpg.InvalidPasswordError) as refused:  # the server checked them
            await connect(settings)
        for text in (str(refused.value), repr(refused.value), repr(refused.value.as_dict())):
            assert "wrong-password" not in text and "the-right-password" not in text
    right = as_role.model_copy(update={"postgres_password": SecretStr("the-right-password")})
    conn = await connect(right)  # the password setting wins over the DSN's
    try:
        assert await conn.fetchval("SELECT current_user") == PASSWORD_ROLE
    finally:
        await conn.close()
