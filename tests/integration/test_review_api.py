"""The review console's API and pages against real PostgreSQL and the embedded broker: sign-in,
CSRF, the read-only role, decisions published to the compacted topic and applied by a worker's
decision table, superseding, undoing and settling open items."""

from __future__ import annotations

import asyncio
import re
import time

import pytest
from aiohttp import ClientSession, CookieJar
from aiohttp.test_utils import TestServer

from domain.decisions import decision_place
from streams.db import connect
from streams.decisions_table import DecisionTableService
from streams.kafka_io import ensure_topics
from streams.kafka_security import kafka_client_options
from streams.postgres_sink import SinkBatch, SinkWriter, result_row
from streams.review import auth
from streams.review.sink_rows import review_item_row
from streams.review.web import create_app
from tests.review_support import fixture_index, payee, prepare_database, result_for, review_settings

pytestmark = pytest.mark.integration
PASSWORD = "correct horse battery"


@pytest.fixture
async def console(settings, pg_schema):
    """Console app served in-process, with review items written as the sink writes them."""
    settings = review_settings(settings, pg_schema)
    await ensure_topics(settings)
    await prepare_database(settings, [("ana", "reviewer", PASSWORD), ("olga", "read_only", PASSWORD)])
    index = fixture_index()
    results = [result_for(payee(f"r{i}", amount=str(100 * (i + 1)), source=source), index)
               for i, source in enumerate(["ap-east", "ap-east", "ap-west"])]
    writer = SinkWriter(settings)
    rows = [result_row(r) for r in results]
    await writer.write(SinkBatch(
        results=rows,
        review_items=[review_item_row(r, row.result, row.processed_at, 1000.0) for r, row in zip(results, rows, strict=True)],
    ))
    conn = await connect(settings)
    await conn.executemany(
        "INSERT INTO supplier_directory (supplier_id, name, state) VALUES ($1, $2, $3)",
        [(s.supplier_id, s.name, s.state) for s in (index.get("EIN237026061"), index.get("EIN237026062"))],
    )
    token = await auth.add_reviewer(conn, "bot", "Bot", "reviewer", None, with_token=True)
    await conn.close()
    await writer.close()
    server = TestServer(create_app(settings))
    await server.start_server()
    yield settings, server, token
    await server.close()


async def sign_in(server, username: str) -> tuple[ClientSession, str]:
    http = ClientSession(cookie_jar=CookieJar(unsafe=True))  # cookies for 127.0.0.1
    async with http.post(server.make_url("/login"), data={"username": username, "password": PASSWORD},
                         allow_redirects=False) as response:
        assert response.status == 302
    async with http.get(server.make_url("/")) as response:
        csrf = re.search(r'name="csrf" value="([^"]+)"', await response.text()).group(1)
    return http, csrf


async def test_sign_in_csrf_and_roles(console) -> None:
    settings, server, _ = console
    async with ClientSession() as anonymous:
        async with anonymous.get(server.make_url("/"), allow_redirects=False) as response:
            assert response.status == 302 and response.headers["Location"] == "/login"
        async with anonymous.get(server.make_url("/api/queue")) as response:
            assert response.status == 401
        async with anonymous.post(server.make_url("/login"), data={"username": "ana", "password": "wrong password"}) as response:
            assert response.status == 401
    http, csrf = await sign_in(server, "ana")
    async with http:
        form = {"record_key": "ap-east:r0", "action": "no_supplier", "scope": "source_place"}
        async with http.post(server.make_url("/item/decide"), data=form) as response:
            assert response.status == 403  # no CSRF token
        async with http.post(server.make_url("/item/decide"), data={**form, "csrf": "forged"}) as response:
            assert response.status == 403
    readonly, csrf = await sign_in(server, "olga")
    async with readonly:
        async with readonly.get(server.make_url("/api/queue")) as response:
            assert (await response.json())["total_open"] == 3
        async with readonly.post(server.make_url("/item/decide"), data={**form, "csrf": csrf}) as response:
            assert response.status == 403
    conn = await connect(settings)
    assert await conn.fetchval("SELECT count(*) FROM review_decisions") == 0
    # Only digests are stored.
    assert await conn.fetchval("SELECT count(*) FROM reviewers WHERE password_hash LIKE 'scrypt$%'") == 2
    await conn.close()


async def test_decisions_reach_a_worker_table_supersede_undo_and_settle_items(console) -> None:
    settings, server, token = console
    table_service = DecisionTableService(kafka_options=kafka_client_options(settings), topic=settings.topic_decisions)
    await table_service.start()
    try:
        await asyncio.wait_for(table_service.wait_ready(), 30)
        api = {"Authorization": f"Bearer {token}"}
        async with ClientSession(headers=api) as http:
            async with http.get(server.make_url("/api/queue")) as response:
                queue = await response.json()
            top = queue["items"][0]
            assert top["record_key"] == "ap-west:r2"  # the largest amount first
            async with http.get(server.make_url("/api/suppliers"), params={"q": "legion"}) as response:
                assert {s["supplier_id"] for s in await response.json()} == {"EIN237026061", "EIN237026062"}
            decide = {"record_key": "ap-east:r0", "action": "confirm", "supplier_id": "EIN237026062",
                      "scope": "source", "note": "checked the invoice"}
            async with http.post(server.make_url("/api/decisions"), json=decide) as response:
                assert response.status == 201
                first = await response.json()
            assert sorted(first["resolved"]) == ["ap-east:r0", "ap-east:r1"]  # same payee and source
            first_id = first["decision"]["decision_id"]
            await wait_until(lambda: first_id in table_service.table)
            decided = table_service.table.find("AMERICAN LEGION", "ap-east", decision_place("Alaska"))
            assert decided.match.supplier_id == "EIN237026062"

            # A newer decision on the same key supersedes the first.
            async with http.post(server.make_url("/api/decisions"), json={**decide, "supplier_id": "EIN237026061"}) as response:
                second = await response.json()
            second_id = second["decision"]["decision_id"]
            assert second["decision"]["supersedes"] == first_id
            await wait_until(lambda: second_id in table_service.table and first_id not in table_service.table)

            async with http.post(server.make_url("/api/decisions/undo"), json={"decision_id": first_id}) as response:
                assert response.status == 409  # superseded, no longer in force
            async with http.post(server.make_url("/api/decisions/undo"), json={"decision_id": second_id}) as response:
                assert response.status == 200
            await wait_until(lambda: len(table_service.table) == 0)

            async with http.post(server.make_url("/api/decisions"), json={**decide, "supplier_id": "NOPE"}) as response:
                assert response.status == 422
        conn = await connect(settings)
        states = dict(await conn.fetch("SELECT decision_id::text, state FROM review_decisions"))
        assert states == {first_id: "superseded", second_id: "undone"}
        # The first decision resolved r0 and r1; the second resolved nothing new; undoing it
        # reopens what it resolved (nothing), so r0 and r1 stay resolved by the first.
        assert await conn.fetchval("SELECT count(*) FROM review_items WHERE status = 'open'") == 1
        await conn.close()
    finally:
        await table_service.stop()


async def wait_until(condition, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError
        await asyncio.sleep(0.02)
