"""`quotad-sim gateway` in real time (issue 6): the fleet is the provisioned lines 8190xxxxxxxx with
3G and CHAP shares spread evenly, and a short run against a real daemon attaches every handset,
stops every session at the end, and everything moved is counted by quotad (R-6, R-16, R-71)."""

from __future__ import annotations

import datetime as dt
import socket

from quotad.quota.calendar import day_key
from quotad.quota.model import LineRef
from simulators import realtime
from simulators.gateway import GatewaySettings
from simulators.provision import provision
from simulators.wire import Nas
from tests.conftest import free_port
from tests.integration.daemon_fixture import SECRET, T0, daemon_config, running_daemon


def test_fleet_spreads_3g_and_chap_evenly() -> None:
    fleet = realtime.handsets(realtime.Fleet(handsets=10, share_3g=0.2, share_chap=0.5, first=7))
    assert [h.msisdn for h in fleet[:2]] == ["819000000007", "819000000008"]
    assert fleet[0].imsi == "440100000000007"
    assert [h.rat for h in fleet].count("3g") == 2
    assert [h.auth for h in fleet].count("chap") == 5


async def test_short_real_time_run_every_octet_counted(redis_url: str) -> None:
    coa_port = free_port(socket.SOCK_DGRAM)
    async with running_daemon(daemon_config(redis_url, coa_port=coa_port)) as d:
        assert d.store is not None
        await provision(d.store, 20, "light_start", T0, dt.date(2026, 10, 1))
        settings = GatewaySettings(auth_port=d.auth_port, acct_port=d.acct_port, coa_port=coa_port,
                                   nas=Nas(secret=SECRET), interim_interval=1)
        fleet = realtime.Fleet(handsets=20, share_3g=0.25, share_chap=0.5)
        gateway = await realtime.run(settings, fleet, duration=1.5, step=0.25, status=None)
        kinds = [e.kind for e in gateway.events]
        assert kinds.count("accept") == 20 and kinds.count("stop") == 20 and "reject" not in kinds
        profiles = {d.handset.msisdn: d.handset.rat for d in gateway.devices}
        assert list(profiles.values()).count("3g") == 5
        accepts = {e.msisdn: e.detail.split()[0] for e in gateway.events if e.kind == "accept"}
        assert {accepts[m] for m, rat in profiles.items() if rat == "3g"} == {"high-3g"}
        assert {accepts[m] for m, rat in profiles.items() if rat == "lte"} == {"high-lte"}
        for device in gateway.devices:
            h = device.handset
            rows = await d.store.views.line_usage(LineRef(f"sim-{int(h.msisdn[4:])}", h.msisdn), [day_key(T0)])
            assert rows[0].high + rows[0].low == h.lifetime_octets, h.msisdn
