"""R-3/R-50 over real UDP and real HTTP: a voice line attaches only once its contract holder's
identity is verified; a data line never waits. A real daemon, a real Redis, the real API."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import shutil
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from quotad import metrics
from quotad.app import Daemon
from quotad.config import ApiSettings, Secret, TokenSettings
from quotad.radius import packet as rp
from tests.integration.daemon_fixture import SECRET, T0, access_request, daemon_config, exchange, running_daemon

OP = "operator-token-0123456789abcdef"
VOICE, DATA = "819000000001", "819000000002"
JPEG = (Path(__file__).resolve().parent.parent / "data" / "baseline.jpg").read_bytes()
HOLDER = {"family_name": "山田", "given_name": "太郎", "address": "東京都千代田区神田神保町1-105",
          "birth_date": "1990-04-01"}
LICENCE = {"type": "drivers_licence", "family_name": "山田", "given_name": "太郎", "birth_date": "1990-04-01",
           "address": "東京都千代田区神田神保町1-105", "expires_on": "2028-05-01",
           "images": [{"side": "front", "data": base64.b64encode(JPEG).decode()}]}


def rejects(reason: str) -> float:
    return metrics.REGISTRY.get_sample_value("quotad_radius_rejects_total", {"reason": reason}) or 0.0


@pytest.fixture
async def daemon(redis_url: str) -> AsyncIterator[Daemon]:
    config = daemon_config(redis_url)
    config = replace(config, api=ApiSettings(tokens=(TokenSettings(token=Secret(OP), role="operator"),)))
    async with running_daemon(config) as d:
        await d.store.provisioning.create_contract("fam", "family_share", dt.date(2026, 11, 1), T0)
        await d.store.provisioning.add_line("fam", VOICE, "8981100000000000011", "440100000000001", "nano", True, T0)
        await d.store.provisioning.add_line("fam", DATA, "8981100000000000029", "440100000000002", "nano", False, T0)
        yield d


async def attach(d: Daemon, msisdn: str, identifier: int) -> rp.Packet:
    datagram, auth = access_request(msisdn=msisdn, identifier=identifier)
    raw = await exchange(d.auth_port, datagram)
    assert raw is not None, "no reply"
    pkt = rp.decode(raw)
    assert rp.verify_response_authenticator(pkt, auth, SECRET)
    return pkt


async def api(d: Daemon, method: str, path: str, body: Any) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as http, http.request(
        method, f"http://127.0.0.1:{d.http_port}{path}", json=body, headers={"Authorization": f"Bearer {OP}"}
    ) as resp:
        return resp.status, await resp.json()


async def test_r50_voice_line_rejected_until_identity_verified_data_line_unaffected(daemon: Daemon) -> None:
    before = rejects("identity_unverified")
    pool = (await daemon.store.views.contract_view("fam", T0)).pool
    pkt = await attach(daemon, VOICE, 1)
    assert (pkt.code, pkt.get(rp.REPLY_MESSAGE)) == (rp.ACCESS_REJECT, b"Identity not verified")
    assert rejects("identity_unverified") == before + 1
    view = await daemon.store.views.contract_view("fam", T0)
    voice = next(line for line in view.lines if line.msisdn == VOICE)
    assert (view.pool, voice.held, voice.sessions) == (pool, 0, 0)  # a refused attach takes nothing
    assert (await attach(daemon, DATA, 2)).code == rp.ACCESS_ACCEPT  # data-only lines need no check

    assert (await api(daemon, "PUT", "/v1/contracts/fam/holder", HOLDER))[0] == 200
    status, body = await api(daemon, "POST", "/v1/contracts/fam/identity", {"document": LICENCE})
    assert (status, body["status"]) == (201, "verified")

    pkt = await attach(daemon, VOICE, 3)
    assert pkt.code == rp.ACCESS_ACCEPT
    assert pkt.get(rp.FRAMED_IP_ADDRESS) is not None
    assert rejects("identity_unverified") == before + 1


async def test_r50_refused_submission_keeps_voice_line_out_and_revocation_shuts_it_again(daemon: Daemon) -> None:
    assert (await api(daemon, "PUT", "/v1/contracts/fam/holder", HOLDER))[0] == 200
    status, body = await api(daemon, "POST", "/v1/contracts/fam/identity",
                             {"document": {**LICENCE, "expires_on": "2026-11-09"}})  # T0 is 10 November
    assert (status, body["error"]["code"], body["error"]["rule"]) == (422, "document_expired", "R-51")
    assert (await attach(daemon, VOICE, 1)).code == rp.ACCESS_REJECT

    assert (await api(daemon, "POST", "/v1/contracts/fam/identity", {"document": LICENCE}))[0] == 201
    assert (await attach(daemon, VOICE, 2)).code == rp.ACCESS_ACCEPT
    assert (await api(daemon, "DELETE", "/v1/contracts/fam/identity", None))[0] == 200
    pkt = await attach(daemon, VOICE, 3)
    assert (pkt.code, pkt.get(rp.REPLY_MESSAGE)) == (rp.ACCESS_REJECT, b"Identity not verified")
    assert (await attach(daemon, DATA, 4)).code == rp.ACCESS_ACCEPT


async def radclient(port: int, msisdn: str) -> str:
    """FreeRADIUS's radclient (an independent peer) sends a PAP Access-Request; its printout."""
    attrs = (f"User-Name=mio@iij,User-Password=iij,Called-Station-Id=iijmio.jp,Calling-Station-Id={msisdn},"
             "Message-Authenticator=0x00")
    proc = await asyncio.create_subprocess_exec(
        "radclient", "-x", "-r", "1", "-t", "2", f"127.0.0.1:{port}", "auth", SECRET.decode(),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(attrs.encode()), 20)
    return out.decode() + err.decode()


@pytest.mark.skipif(shutil.which("radclient") is None, reason="radclient not installed")
async def test_r50_radclient_sees_the_reject_reason_then_an_accept(daemon: Daemon) -> None:
    out = await radclient(daemon.auth_port, VOICE)
    assert "Access-Reject" in out and 'Reply-Message = "Identity not verified"' in out, out
    assert (await api(daemon, "PUT", "/v1/contracts/fam/holder", HOLDER))[0] == 200
    assert (await api(daemon, "POST", "/v1/contracts/fam/identity", {"document": LICENCE}))[0] == 201
    out = await radclient(daemon.auth_port, VOICE)
    assert "Access-Accept" in out, out
