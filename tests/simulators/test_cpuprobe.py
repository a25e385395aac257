"""simulators.cpuprobe: the CPU-per-request probe runs the real daemon and reports both parties."""

import re

import pytest

from simulators import cpuprobe


def test_probe_reports_quotad_and_redis_cpu_per_request(capsys: pytest.CaptureFixture[str]) -> None:
    # R-12 path: every PAP request attaches a provisioned line through the real attach script.
    args = ["--kinds", "pap,acct,interim", "--lines", "40", "--warm", "40", "--n", "120", "--window", "16"]
    assert cpuprobe.main(args) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if "a request" in line]
    pattern = r"(pap|acct|interim): \d+\.\d µs CPU a request, \d+ requests/s; Redis \d+\.\d µs a request"
    assert [re.fullmatch(pattern, line).group(1) for line in lines] == ["pap", "acct", "interim"]  # type: ignore[union-attr]
