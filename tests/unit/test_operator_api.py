"""The operator endpoints: a token is required, and they listen on loopback unless configured."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from aiohttp.test_utils import TestClient, TestServer
from pydantic import SecretStr, ValidationError

from streams.operator_api import OperatorApi
from streams.settings import OPERATOR_TOKEN_MIN_LENGTH, Settings

REPO_ROOT = Path(__file__).resolve().parents[2]

TOKEN = "operator-secret-for-the-test"


async def test_resume_requires_the_token():
    resumed: list[bool] = []
    api = OperatorApi(host="127.0.0.1", port=0, token=SecretStr(TOKEN), resume_after_guard=lambda: resumed.append(True))
    async with TestClient(TestServer(api.web_app())) as client:
        for headers in ({}, {"Authorization": "Bearer"}, {"Authorization": "Bearer "}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}, {"Authorization": f"Basic {TOKEN}"}):
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


async def test_an_empty_configured_token_lets_nobody_in():
    resumed: list[bool] = []
    api = OperatorApi(host="127.0.0.1", port=0, token=SecretStr(""), resume_after_guard=lambda: resumed.append(True))
    async with TestClient(TestServer(api.web_app())) as client:
        for headers in ({"Authorization": "Bearer "}, {"Authorization": "Bearer"}, {"Authorization": "bearer  "}):
            assert (await client.post("/dead-letter-guard/resume", headers=headers)).status == 401
    assert resumed == []


@pytest.mark.parametrize("token", ["", "CHANGE_ME", "x" * (OPERATOR_TOKEN_MIN_LENGTH - 1)])
def test_a_short_operator_token_is_refused_at_startup(token: str, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("PAYEE_STREAM_OPERATOR_TOKEN", token)
    with pytest.raises(ValidationError) as refused:
        Settings()
    assert "operator_token" in str(refused.value) and (not token or token not in str(refused.value))


def test_the_kubernetes_secret_template_holds_no_usable_token():
    template = yaml.safe_load((REPO_ROOT / "infra" / "k8s" / "secret.example.yaml").read_text())
    placeholder = template["stringData"]["PAYEE_STREAM_OPERATOR_TOKEN"]
    with pytest.raises(ValidationError):
        Settings(operator_token=placeholder)
