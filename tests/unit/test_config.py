"""Configuration: documented defaults, and a bad file names the key and the reason (R-72)."""

from __future__ import annotations

from pathlib import Path

import pytest

from quotad import cli
from quotad import config as cfg

SHIPPED = Path(__file__).resolve().parents[2] / "config" / "quotad.toml"


def test_shipped_file_is_the_builtin_defaults() -> None:
    """Every setting has a documented default: config/quotad.toml spells out Config()."""
    assert cfg.load(SHIPPED) == cfg.Config()


def test_defaults_match_the_issue() -> None:
    """R-1 APN iijmio.jp with mio@iij/iij; one client 127.0.0.1/32; ports 1812/1813/8080."""
    c = cfg.Config()
    assert (c.server.bind, c.server.auth_port, c.server.acct_port, c.server.http_port) == (
        "127.0.0.1", 1812, 1813, 8080,
    )
    assert [(x.address, str(x.secret)) for x in c.clients] == [("127.0.0.1/32", "testing123")]
    assert [(a.name, a.user, str(a.password), a.home_networks) for a in c.apns] == [
        ("iijmio.jp", "mio@iij", "iij", ("44010",))
    ]
    assert (c.apns[0].session_timeout, c.apns[0].idle_timeout) == (86400, 7200)


def test_r70_coa_defaults() -> None:
    """R-70 / R-24: CoA to port 3799, 1 s then 3 retries backing off x2 up to 8 s, 10000 pending
    per gateway; a client without its own CoA port or secret uses coa.port and its RADIUS secret."""
    c = cfg.Config()
    assert (c.coa.port, c.coa.timeout, c.coa.retries, c.coa.backoff, c.coa.max_timeout, c.coa.max_pending) == (
        3799, 1.0, 3, 2.0, 8.0, 10000)
    assert (c.clients[0].coa_port, str(c.clients[0].coa_secret)) == (0, "")


def test_redis_appendfsync() -> None:
    """The embedded Redis fsyncs its append-only file every second unless told otherwise; the three
    policies of Redis are accepted and nothing else, named with the value it got."""
    assert cfg.Config().redis.appendfsync == "everysec"
    for policy in ("always", "everysec", "no"):
        assert cfg.from_dict({"redis": {"appendfsync": policy}}).redis.appendfsync == policy
    with pytest.raises(cfg.ConfigError) as info:
        cfg.from_dict({"redis": {"appendfsync": "Always"}})
    assert info.value.problems == [("redis.appendfsync", "must be one of always, everysec, no, got 'Always'")]


def test_secrets_do_not_show_in_repr() -> None:
    """No secret in a log line: reprs of the config mask them."""
    text = repr(cfg.from_dict({"clients": [{"address": "10.0.0.0/8", "secret": "testing123",
                                            "coa_secret": "coa-secret-xyz"}]}))
    assert "testing123" not in text and "coa-secret-xyz" not in text
    assert "'iij'" not in text


@pytest.mark.parametrize(
    ("data", "key", "reason"),
    [
        ({"server": {"auth_port": 70000}}, "server.auth_port", "between 0 and 65535"),
        ({"server": {"auth_port": "1812"}}, "server.auth_port", "must be an integer"),
        ({"server": {"bogus": 1}}, "server.bogus", "unknown setting"),
        ({"redis": {"url": "http://x"}}, "redis.url", "must start with redis://"),
        ({"redis": {"appendfsync": "sometimes"}}, "redis.appendfsync", "must be one of always, everysec, no"),
        ({"redis": {"appendfsync": 1}}, "redis.appendfsync", "must be a string"),
        ({"clients": [{"address": "300.1.1.1", "secret": "s"}]}, "clients[0].address", "not an address"),
        ({"clients": [{"address": "10.0.0.0/8"}]}, "clients[0].secret", "must not be empty"),
        ({"quota": {"ip_range": "100.64.0.0/33"}}, "quota.ip_range", "not an IPv4 network"),
        ({"quota": {"timezone": "Mars/Olympus"}}, "quota.timezone", "unknown time zone"),
        ({"apns": [{"name": "a", "user": "u", "home_networks": ["x"]}]}, "apns[0].home_networks", "MCC-MNC"),
        ({"profiles": {"low": {"down_bps": "fast"}}}, "profiles.low.down_bps", "must be an integer"),
        ({"server": []}, "server", "must be a table"),
        ({"coa": {"port": 0}}, "coa.port", "between 1 and 65535"),
        ({"coa": {"timeout": 0}}, "coa.timeout", "must be in (0, 60]"),
        ({"coa": {"retries": 11}}, "coa.retries", "between 0 and 10"),
        ({"coa": {"backoff": 0.5}}, "coa.backoff", "between 1 and 10"),
        ({"coa": {"timeout": 5.0, "max_timeout": 2.0}}, "coa.max_timeout", "between coa.timeout and 300"),
        ({"coa": {"max_pending": 0}}, "coa.max_pending", "between 1 and 1000000"),
        ({"coa": {"bogus": 1}}, "coa.bogus", "unknown setting"),
        ({"clients": [{"address": "10.0.0.0/8", "secret": "s", "coa_port": 70000}]}, "clients[0].coa_port",
         "between 0 and 65535"),
    ],
)
def test_bad_setting_names_key_and_reason(data: dict, key: str, reason: str) -> None:
    with pytest.raises(cfg.ConfigError) as info:
        cfg.from_dict(data)
    assert any(k == key and reason in r for k, r in info.value.problems), info.value.problems


def test_every_bad_key_is_reported_at_once() -> None:
    with pytest.raises(cfg.ConfigError) as info:
        cfg.from_dict({"server": {"auth_port": -1, "log_level": "loud"}})
    assert {k for k, _ in info.value.problems} == {"server.auth_port", "server.log_level"}


def test_check_config_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`quotad check-config` exits 0 on a good file and 2 naming the key on a bad one."""
    assert cli.main(["check-config", str(SHIPPED)]) == 0
    bad = tmp_path / "bad.toml"
    bad.write_text('[server]\nauth_port = 70000\n[profiles.low]\nattributes = { "No-Such-Attr" = 1 }\n')
    with pytest.raises(SystemExit) as info:
        cli.main(["check-config", str(bad)])
    assert info.value.code == 2
    assert "server.auth_port" in capsys.readouterr().err


def test_one_profile_changed_keeps_the_others() -> None:
    """R-20: an operator retunes one profile; the rest of the catalog keeps its defaults."""
    c = cfg.from_dict({"profiles": {"restricted": {"down_bps": 64000}}})
    assert c.profiles["restricted"].down_bps == 64000
    assert c.profiles["restricted"].up_bps == 32000
    assert c.profiles["high-lte"] == cfg.Config().profiles["high-lte"]


def test_unknown_attribute_in_profile_template_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """R-20 templates are checked against the dictionaries at startup."""
    bad = tmp_path / "bad.toml"
    bad.write_text('[profiles.low]\nattributes = { "No-Such-Attr" = 1 }\n')
    with pytest.raises(SystemExit):
        cli.main(["check-config", str(bad)])
    assert "profiles.low.attributes.No-Such-Attr" in capsys.readouterr().err
