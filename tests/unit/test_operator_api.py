"""The operator endpoints: a token is required, and they listen on loopback unless configured."""

from __future__ import annotations

from aiohttp.test_utils import TestClient, TestServer
from pydantic import SecretStr

from streams.operator_api import OperatorApi
from streams.settings import Settings

TOKEN = "operator-secret"


async def test_resume_requires_the_token():
    resumed: list[bool] = []
    api = OperatorApi(host="127.0.0.1", port=0, token=SecretStr(TOKEN), resume_after_guard=lambda: resumed.append(True))
    async with TestClient(TestServer(api.web_app())) as client:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}, {"Authorization": f"Basic {TOKEN}"}):
            response = await client.post("/dead-letter-guard/resume", headers=headers)
            assert response.status == 401
            assert TOKEN not in await response.text()
        assert resumed == []
        response = await client.post("/dead-letter-guard/resume", headers={"Authorization": f"Bearer {TOKEN}"})
        assert response.status == 200 and await response.json() == {"resumed": True}
        assert resumed == [True]
        assert (await client.get("/dead-letter-guard/resume")).status == 405


def test_defaults_serve_no_operator_endpoint_and_only_on_loopback():
    settings = Settings()
    assert settings.operator_token is None  # no token: the endpoints are not served at all
    assert settings.operator_host == "127.0.0.1"
