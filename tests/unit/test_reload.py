"""Configuration reload, the pure parts: what a new file changes, which changes a reload applies
and which need a restart, the configuration in effect afterwards, the refused file, and the frames
the supervisor sends its workers."""

from __future__ import annotations

import os
import signal
from dataclasses import replace
from pathlib import Path

import pytest

from quotad import app, metrics, reload
from quotad import config as cfg

CLIENT_B = '[[clients]]\nname = "pgw2"\naddress = "192.0.2.0/24"\nsecret = "pgw2-secret-000"\n'
LOCALHOST = '[[clients]]\nname = "localhost"\naddress = "127.0.0.1/32"\nsecret = "testing123"\n'
TOKEN = '[[api.tokens]]\ntoken = "operator-token-0000000001"\n'


def _with(**sections: object) -> cfg.Config:
    return replace(cfg.Config(), **sections)  # type: ignore[arg-type]


def test_nothing_changed() -> None:
    assert reload.changed(cfg.Config(), cfg.Config()) == []


def test_changed_names_each_key_as_the_file_spells_it() -> None:
    old = cfg.Config()
    client = old.clients[0]
    new = replace(
        old,
        server=replace(old.server, auth_port=1912, log_level="debug"),
        clients=(replace(client, secret=cfg.Secret("other-secret")),),
        plans={**old.plans, "gold": cfg.PlanSettings(5, 1, 1)},
        profiles={**old.profiles, "low": replace(old.profiles["low"], attributes={"Filter-Id": "slow"})},
    )
    assert reload.changed(old, new) == [
        "server.auth_port", "server.log_level", "clients[0].secret", "plans.gold",
        "profiles.low.attributes.Filter-Id", "profiles.low.attributes.Quotad-Exempt-Rule",
        "profiles.low.attributes.Quotad-Rate-Down", "profiles.low.attributes.Quotad-Rate-Up",
        "profiles.low.attributes.Quotad-Speed-Profile",
    ]


def test_a_list_of_another_length_is_named_whole() -> None:
    old = cfg.Config()
    more = (*old.clients, cfg.ClientSettings("pgw2", "192.0.2.1", cfg.Secret("s3cret-pgw2")))
    tokens = (cfg.TokenSettings(cfg.Secret("operator-token-0000000001")),)
    assert reload.changed(old, _with(clients=more, api=cfg.ApiSettings(tokens))) == ["clients", "api.tokens"]


def test_the_settings_a_reload_applies() -> None:
    """Exactly these; every other setting of Config needs a restart."""
    assert reload.reloadable_settings() == ["server.log_level", "clients", "api.tokens", "coa.port"]
    restart = reload.restart_settings()
    assert len(restart) == 54
    assert {"server.auth_port", "server.workers", "redis.url", "quota.ip_range", "apns", "plans", "profiles",
            "radsec.clients", "coa.timeout", "publicsafety.apns"} <= set(restart)
    assert not set(restart) & set(reload.reloadable_settings())


@pytest.mark.parametrize(("key", "applies"), [
    ("clients", True), ("clients[3].secret", True), ("clients[0].coa_secret", True), ("coa.port", True),
    ("api.tokens", True), ("server.log_level", True),
    ("clients_extra", False), ("coa.timeout", False), ("server.auth_port", False), ("radsec.clients", False),
    ("apns[0].password", False), ("plans.gold", False), ("server.log_levels", False),
])
def test_reloadable(key: str, applies: bool) -> None:
    assert reload.reloadable(key) is applies
    assert reload.needs_restart([key]) == ([] if applies else [key])


def test_plan_unchanged() -> None:
    result = reload.plan(cfg.Config(), cfg.Config())
    assert (result.outcome, result.applied, result.restart, result.applies) == ("unchanged", (), (), False)
    assert result.config == cfg.Config()


def test_plan_ok_takes_the_new_clients_tokens_coa_port_and_log_level() -> None:
    old = cfg.Config()
    new = replace(
        old,
        clients=(*old.clients, cfg.ClientSettings("pgw2", "192.0.2.1", cfg.Secret("s3cret-pgw2"), coa_port=3800)),
        api=cfg.ApiSettings((cfg.TokenSettings(cfg.Secret("operator-token-0000000001")),)),
        coa=replace(old.coa, port=4799),
        server=replace(old.server, log_level="warning"),
    )
    result = reload.plan(old, new)
    assert (result.outcome, result.applied, result.restart) == (
        "ok", ("server.log_level", "clients", "api.tokens", "coa.port"), ())
    assert result.applies
    assert result.config == new


def test_plan_applies_the_safe_part_and_keeps_the_rest_until_a_restart() -> None:
    old = cfg.Config()
    tokens = cfg.ApiSettings((cfg.TokenSettings(cfg.Secret("operator-token-0000000001")),))
    new = replace(old, api=tokens, server=replace(old.server, auth_port=1912, workers=4),
                  coa=replace(old.coa, port=4799, timeout=2.0))
    result = reload.plan(old, new)
    assert (result.outcome, result.applied, result.restart) == (
        "restart_required", ("api.tokens", "coa.port"), ("server.auth_port", "server.workers", "coa.timeout"))
    assert result.config == replace(old, api=tokens, coa=replace(old.coa, port=4799))
    # Only restart settings changed: nothing to apply, the outcome still says a restart is needed.
    only = reload.plan(old, replace(old, server=replace(old.server, max_inflight=10)))
    assert (only.outcome, only.applied, only.restart, only.applies) == (
        "restart_required", (), ("server.max_inflight",), False)
    assert only.config == old


def test_merge_keeps_what_needs_a_restart() -> None:
    running = replace(cfg.Config(), redis=cfg.RedisSettings(url="unix:///run/redis.sock"))
    new = replace(cfg.Config(), clients=(), server=replace(cfg.Config().server, auth_port=1, log_level="error"))
    merged = reload.merge(running, new)
    assert merged.redis.url == "unix:///run/redis.sock"
    assert (merged.clients, merged.server.auth_port, merged.server.log_level) == ((), 1812, "error")


def _counts() -> dict[str, float]:
    """Each outcome's count, read as a scrape reads it (quotad's counters hand over their counts when read)."""
    return {o: metrics.REGISTRY.get_sample_value("quotad_config_reloads_total", {"outcome": o}) or 0.0
            for o in reload.OUTCOMES}


def test_reloader_reads_the_file_again(tmp_path: Path) -> None:
    path = tmp_path / "quotad.toml"
    path.write_text(LOCALHOST)
    loaded = cfg.load(path)
    reloader = reload.Reloader(path, loaded, app.validate)
    before = _counts()
    first = reloader.reload()
    assert (first.outcome, first.config) == ("unchanged", loaded)
    path.write_text(LOCALHOST + CLIENT_B + TOKEN)
    second = reloader.reload()
    assert (second.outcome, second.applied) == ("ok", ("clients", "api.tokens"))
    assert [c.name for c in reloader.running.clients] == ["localhost", "pgw2"]
    reloader.report(first)
    reloader.report(second)
    after = _counts()
    assert {o: after[o] - before[o] for o in reload.OUTCOMES} == {
        "ok": 1.0, "unchanged": 1.0, "restart_required": 0.0, "invalid": 0.0}


@pytest.mark.parametrize(("text", "problems"), [
    (LOCALHOST + CLIENT_B.replace('"pgw2-secret-000"', '""'), [("clients[1].secret", "must not be empty")]),
    (LOCALHOST + '[server]\nauth_port = "x"\n', [("server.auth_port", "must be an integer, got 'x'")]),
    (LOCALHOST + "[[clients]\n", None),
    ('[profiles.low]\nattributes = { No-Such-Attribute = "x" }\n', None),
])
def test_reloader_refuses_a_bad_file_and_keeps_the_running_configuration(
    tmp_path: Path, text: str, problems: list[tuple[str, str]] | None,
) -> None:
    path = tmp_path / "quotad.toml"
    path.write_text(LOCALHOST)
    reloader = reload.Reloader(path, cfg.load(path), app.validate)
    running = reloader.running
    path.write_text(text)
    result = reloader.reload()
    assert (result.outcome, result.config, result.applied, result.restart) == ("invalid", running, (), ())
    assert reloader.running is running
    if problems is not None:
        assert list(result.problems) == problems
    else:
        assert len(result.problems) == 1
        key, reason = result.problems[0]
        assert key in (str(path), "profiles.low.attributes.No-Such-Attribute")
        assert reason


def test_reloader_without_a_file_has_the_defaults(tmp_path: Path) -> None:
    reloader = reload.Reloader(None, cfg.Config(), app.validate)
    assert reloader.reload().outcome == "unchanged"


def test_a_missing_or_unreadable_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "quotad.toml"
    path.write_text(LOCALHOST)
    reloader = reload.Reloader(path, cfg.load(path), app.validate)
    path.unlink()
    assert reloader.reload().problems == ((str(path), "file not found"),)
    path.mkdir()
    assert reloader.reload().problems == ((str(path), "cannot read: Is a directory"),)


def test_frames_survive_any_split() -> None:
    one = replace(cfg.Config(), clients=())
    two = cfg.Config()
    data = reload.frame(7, one) + reload.frame(8, two)
    for cut in (1, 5, 8, len(data) // 2, len(data) - 1):
        frames = reload.Frames()
        got = frames.feed(data[:cut]) + frames.feed(data[cut:])
        assert got == [(7, one), (8, two)]
        assert str(got[1][1].clients[0].secret) == "testing123"


def test_a_sighup_before_the_handler_is_remembered() -> None:
    previous = signal.getsignal(signal.SIGHUP)
    try:
        reload.hold_sighup()
        assert reload.take_held() is False
        os.kill(os.getpid(), signal.SIGHUP)  # the handler runs before kill returns to Python code
        assert reload.take_held() is True
        assert reload.take_held() is False
    finally:
        signal.signal(signal.SIGHUP, previous)
