"""Reviewers, their credentials and sessions.

Passwords are stored as scrypt hashes (salted, parameters kept with the hash), API tokens and
session cookies as SHA-256 digests: a copy of the database yields no credential. Every session
has a CSRF token that each form and API call made with the session cookie must echo.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

import asyncpg

Role = Literal["reviewer", "read_only"]
ROLES: tuple[Role, ...] = ("reviewer", "read_only")

# scrypt cost: about 50 ms and 16 MiB per check (OWASP's minimum is N=2**17 with r=8 at 128 MiB;
# this is a signed-in console, not an offline-attackable dump of a public site).
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
SCRYPT_MAXMEM = 64 * 1024 * 1024
MIN_PASSWORD_CHARS = 10


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def hash_password(password: str, salt: bytes | None = None) -> str:
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.scrypt(
        password.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, maxmem=SCRYPT_MAXMEM, dklen=32
    )
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, stored: str | None) -> bool:
    if not stored:
        return False
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        candidate = hashlib.scrypt(
            password.encode(), salt=_unb64(salt), n=int(n), r=int(r), p=int(p), maxmem=SCRYPT_MAXMEM, dklen=32
        )
    except ValueError:
        return False
    return hmac.compare_digest(candidate, _unb64(digest))


# Checked against when the username is unknown, so that timing does not tell names apart.
_DUMMY_HASH = hash_password("not-a-password", salt=b"\0" * 16)


def secret_digest(secret: str) -> str:
    """Digest of a high-entropy secret (API token, session id): no salt or stretching needed."""
    return hashlib.sha256(secret.encode()).hexdigest()


def new_secret() -> str:
    return secrets.token_urlsafe(32)


@dataclass(frozen=True)
class Reviewer:
    username: str
    display_name: str
    role: Role

    @property
    def may_decide(self) -> bool:
        return self.role == "reviewer"


@dataclass(frozen=True)
class Session:
    reviewer: Reviewer
    csrf_token: str | None  # None for API-token requests, which carry no cookie to forge


def csrf_matches(session: Session, presented: str | None) -> bool:
    if session.csrf_token is None:
        return True
    return presented is not None and hmac.compare_digest(session.csrf_token, presented)


async def add_reviewer(
    conn: asyncpg.Connection,
    username: str,
    display_name: str,
    role: Role,
    password: str | None,
    with_token: bool,
) -> str | None:
    """Create or update a reviewer; returns the new API token when one was asked for (shown once)."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    if password is not None and len(password) < MIN_PASSWORD_CHARS:
        raise ValueError(f"passwords have at least {MIN_PASSWORD_CHARS} characters")
    loop = asyncio.get_running_loop()
    password_hash = await loop.run_in_executor(None, hash_password, password) if password else None
    token = new_secret() if with_token else None
    await conn.execute(
        """
        INSERT INTO reviewers (username, display_name, role, password_hash, token_digest)
        VALUES ($1, $2, $3, $4, $5)
        ON CONFLICT (username) DO UPDATE
        SET display_name = excluded.display_name, role = excluded.role, disabled = false,
            password_hash = coalesce(excluded.password_hash, reviewers.password_hash),
            token_digest = coalesce(excluded.token_digest, reviewers.token_digest)
        """,
        username,
        display_name,
        role,
        password_hash,
        secret_digest(token) if token else None,
    )
    return token


def _reviewer(row: asyncpg.Record) -> Reviewer:
    return Reviewer(username=row["username"], display_name=row["display_name"], role=row["role"])


async def sign_in(conn: asyncpg.Connection, username: str, password: str, ttl_s: float) -> tuple[str, Session] | None:
    """Check a password; on success a new session: (cookie value, session)."""
    row = await conn.fetchrow(
        "SELECT username, display_name, role, password_hash FROM reviewers WHERE username = $1 AND NOT disabled",
        username,
    )
    stored = row["password_hash"] if row else _DUMMY_HASH
    valid = await asyncio.get_running_loop().run_in_executor(None, verify_password, password, stored)
    if not (row and valid):
        return None
    cookie, csrf = new_secret(), new_secret()
    await conn.execute(
        "INSERT INTO review_sessions (session_digest, username, csrf_token, expires_at) VALUES ($1, $2, $3, $4)",
        secret_digest(cookie),
        username,
        csrf,
        datetime.now(UTC) + timedelta(seconds=ttl_s),
    )
    return cookie, Session(_reviewer(row), csrf)


async def session_for_cookie(conn: asyncpg.Connection, cookie: str) -> Session | None:
    row = await conn.fetchrow(
        """
        SELECT r.username, r.display_name, r.role, s.csrf_token
        FROM review_sessions s JOIN reviewers r USING (username)
        WHERE s.session_digest = $1 AND s.expires_at > now() AND NOT r.disabled
        """,
        secret_digest(cookie),
    )
    return Session(_reviewer(row), row["csrf_token"]) if row else None


async def session_for_token(conn: asyncpg.Connection, token: str) -> Session | None:
    row = await conn.fetchrow(
        "SELECT username, display_name, role FROM reviewers WHERE token_digest = $1 AND NOT disabled",
        secret_digest(token),
    )
    return Session(_reviewer(row), None) if row else None


async def sign_out(conn: asyncpg.Connection, cookie: str) -> None:
    await conn.execute(
        "DELETE FROM review_sessions WHERE session_digest = $1 OR expires_at < now()", secret_digest(cookie)
    )
