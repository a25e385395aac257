"""Every ```sh example of README.md and docs/*.md, run as written against the real `quotad demo`
(issue 17), so the docs cannot drift from the product.

How: for each document, a scratch directory stands in for the checkout (``quotad/``,
``simulators/``, ``config/`` … link to this one; ``HOME`` is the scratch directory's ``home/``),
`quotad demo` starts there as a process (its embedded Redis in ``./data``, its tokens in
``./data/demo-*.token``), and the document's ``sh`` blocks run one after the other, each with
``bash`` under ``set -eo pipefail``, in the order a reader types them into one terminal (shell
variables a block sets are there for the next). Each must exit 0. Where the document shows what a
block prints (an untagged ``` block right after it), each line shown must appear in the output,
in order; a line ``…`` stands for lines left out, and what differs at every run (RADIUS
Identifiers, ephemeral ports, Message-Authenticator, Event-Timestamp) is masked on both sides.
What the prose says a block prints is checked from ``EXPECT``.

Ports: the docs use the demo's defaults (127.0.0.1:1812, 1813, 8080, and the gateway's CoA port
3799), so each document runs in a private network namespace (``unshare``; blocks join it with
``nsenter``) where those ports are always free, whatever else runs on the host. Without
namespaces it runs on the host if those ports are free there, else it is skipped saying so.

Every block is run unless ``SKIPPED`` lists it with the reason (the host installation, systemd,
benchmarks of minutes …); ``SLOW`` ones (minutes) run only with ``QUOTAD_DOCS_SLOW=1``. Both name
a block by a piece of its text found in no other block of that document (a test checks this, so a
stale entry fails). A new ``sh`` block is therefore run by default: write it to work against
`quotad demo`, or list it here with the reason.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DOCS = ("README.md", *sorted(f"docs/{p.name}" for p in (REPO / "docs").glob("*.md")))
SLOW_ENV = "QUOTAD_DOCS_SLOW"
DEMO_PORTS = (("udp", 1812), ("udp", 1813), ("tcp", 8080), ("udp", 3799))

_HOST = "installs on or changes the host (root, /opt, /etc, systemd): the operator's, not a test's"
SKIPPED: dict[tuple[str, str], str] = {
    ("README.md", "make demo"): "starts the demo: the harness starts `quotad demo` itself",
    ("README.md", "make test"): "runs this test suite",
    ("docs/benchmarks.md", "make bench-quick"): "benchmarks of minutes (CI runs `make bench-quick`)",
    ("docs/benchmarks.md", "--generator both"): "a benchmark of minutes, against its own quotad serve",
    ("docs/benchmarks.md", "valgrind --tool=callgrind .venv/bin/python -m simulators.cpuprobe --kinds pap --lines 500"):
        "profiling under valgrind (not installed here), an hour",
    ("docs/benchmarks.md", "--kinds acct --lines 500 --warm 600 --n 300 --window 8"):
        "instruction counts under valgrind, minutes a run",
    ("docs/benchmarks.md", "--runs 5 --rate 2000 --appendfsync"):
        "benchmarks of minutes, against their own quotad serve",
    ("docs/benchmarks.md", "mkdir -p /tmp/vg"): "profiling Redis under valgrind (not installed here), an hour",
    ("docs/benchmarks.md", "QUOTAD_REDIS_SERVER=/tmp/vg/wrap"):
        "instruction counts of Redis under valgrind, minutes a run",
    ("docs/benchmarks.md", "--kinds pap,acct --lines 10000 --n 30000"): "a benchmark of minutes, each server in turn",
    ("docs/benchmarks.md", "--callgrind-out-file=cg.pap.300"): "instruction counts under valgrind, minutes a run",
    ("docs/operations.md", "/usr/bin/python3 -m venv /opt/quotad"): _HOST,
    ("docs/operations.md", "systemd-sysusers"): _HOST,
    ("docs/operations.md", "install -d -m 0755 /etc/quotad"): _HOST,
    ("docs/operations.md", "systemctl enable --now quotad"): _HOST,
    ("docs/operations.md", "systemctl restart quotad"): _HOST,
    ("docs/operations.md", "systemctl reload quotad"): _HOST,
    ("docs/operations.md", "INFO persistence\n"): "reads the Redis of an installed quotad (/var/lib/quotad)",
    ("docs/operations.md", "tar -C /var/lib/quotad --exclude"): "backs up an installed quotad (/var/lib/quotad)",
    ("docs/operations.md", "mv /var/lib/quotad/data"): _HOST,
    ("docs/operations.md", "openssl req -x509"): "makes TLS certificates for a host name (quotad.example.net)",
    ("docs/reliability.md", "pip install atheris"): "installs a fuzzer from PyPI and fuzzes for 10 minutes",
    ("docs/reliability.md", "simulators.soak"): "soak tests of 10 minutes and more, against their own quotad",
    ("docs/simulators.md", "quotad demo &"):
        "starts a second `quotad demo` (the harness runs one) and a 5-minute gateway run; "
        "tests/simulators/test_realtime.py runs the real-time gateway",
    ("docs/simulators.md", "--virtual [--days N] [--json]"):
        "a synopsis ([…] are optional arguments); tests/simulators/test_cli.py runs scenarios",
}
SLOW: dict[tuple[str, str], str] = {
    ("docs/data-model.md", "quotad-sim provision --lines 100000"): "creates 100,000 lines: about 5 minutes",
    ("docs/simulators.md", "quotad-sim replay"): "plays an hour of trace at speed 60: a minute",
    ("docs/simulators.md", "quotad-sim load --window 128"): "creates 10,000 lines and loads for 20 s: a minute",
}
# What the prose around a block says it prints (key parts).
EXPECT: dict[tuple[str, str], tuple[str, ...]] = {
    ("docs/gateway-integration.md", "Acct-Status-Type=Start"): ('"held": 6000000', '"sessions": 1'),
    ("docs/gateway-integration.md", "Service-Type=Authorize-Only"):
        ("Received Access-Accept", "Quotad-Granted-Octets = 16000000", "Framed-IP-Address = 100.64.0.1"),
    ("docs/gateway-integration.md", '{"on": false}'): ('"coupon_on": false', '"speed": "low"'),
    ("docs/gateway-integration.md", "/cards/8981100000000000128/activate"): ('"state": "pending"', '"state": "active"'),
    ("docs/gateway-integration.md", "Acct-Status-Type=Stop"): ("Received Accounting-Response",),
    ("docs/data-model.md", "quotad provision charge"): ("ok: ",),
}
# Untagged blocks that show what the gateway's CoA listener receives (docs_coa_listener.py):
# the harness runs that listener on 127.0.0.1:3799 for these documents, as the prose asks.
SHOWN_AT_THE_GATEWAY: dict[str, tuple[str, ...]] = {"docs/gateway-integration.md": ("CoA-Request",)}

_FENCE = re.compile(r"^```(\S*)\s*$")


@dataclass(frozen=True)
class Block:
    file: str
    line: int  # of the opening fence
    lang: str
    text: str
    output: str | None = None  # the untagged block right after it: what it prints

    @property
    def id(self) -> str:
        return f"{self.file}:{self.line}"


def parse(file: str) -> list[Block]:
    """The fenced blocks of a Markdown file, each ``sh`` block with the output block after it."""
    lines = (REPO / file).read_text().splitlines()
    found: list[Block] = []
    adjacent = False  # only blank lines since the last block closed
    i = 0
    while i < len(lines):
        opening = _FENCE.match(lines[i])
        if opening is None:
            adjacent = adjacent and not lines[i].strip()
            i += 1
            continue
        start, lang = i, opening.group(1)
        i += 1
        while i < len(lines) and lines[i].rstrip() != "```":
            i += 1
        block = Block(file, start + 1, lang, "\n".join(lines[start + 1:i]) + "\n")
        if lang == "" and adjacent and found[-1].lang == "sh" and found[-1].output is None:
            found[-1] = replace(found[-1], output=block.text)
        found.append(block)
        adjacent = True
        i += 1
    return found


def sh_blocks(file: str) -> list[Block]:
    return [b for b in parse(file) if b.lang == "sh"]


def listed(table: dict[tuple[str, str], str], block: Block) -> str | None:
    return next((why for (file, piece), why in table.items() if file == block.file and piece in block.text), None)


def tools_of(block: Block) -> set[str]:
    return {tool for tool in ("radclient", "curl") if re.search(rf"\b{tool}\b", block.text)}


def runs(block: Block) -> bool:
    """Whether the harness runs this block (not skipped, and not slow unless asked)."""
    return listed(SKIPPED, block) is None and (listed(SLOW, block) is None or os.environ.get(SLOW_ENV) == "1")


ALL_BLOCKS = [b for f in DOCS for b in sh_blocks(f)]


# --- masking and comparing output ---------------------------------------------------------------

_SERVER_PORTS = {"1812", "1813", "3799", "8080"}
_MASKS: list[tuple[re.Pattern[str], str | Callable[[re.Match[str]], str]]] = [
    (re.compile(r"\bId \d+\b"), "Id N"),
    (re.compile(r"\b(\d{1,3}(?:\.\d{1,3}){3}):(\d+)\b"),
     lambda m: m.group(0) if m.group(2) in _SERVER_PORTS else f"{m.group(1)}:PORT"),
    (re.compile(r"(Message-Authenticator = )0x[0-9a-f]+"), r"\g<1>0x…"),
    (re.compile(r"(Event-Timestamp = ).*"), r"\g<1>…"),
]


def masked(line: str) -> str:
    line = line.strip()
    for pattern, replacement in _MASKS:
        line = pattern.sub(replacement, line)
    return line


def missing_lines(shown: str, actual: str) -> list[str]:
    """The lines of ``shown`` (masked) not found, in order, among those of ``actual``."""
    have = [masked(x) for x in actual.splitlines()]
    at, missing = 0, []
    for want in (masked(x) for x in shown.splitlines()):
        if not want or want in ("…", "..."):
            continue
        try:
            at = have.index(want, at) + 1
        except ValueError:
            missing.append(want)
    return missing


# --- where the examples run ---------------------------------------------------------------------

_LO_UP = """
import fcntl, socket, struct, sys
with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:  # ip link set lo up
    flags = struct.unpack("16sH22x", fcntl.ioctl(s, 0x8913, struct.pack("16sH22x", b"lo", 0)))[1]
    fcntl.ioctl(s, 0x8914, struct.pack("16sH22x", b"lo", flags | 1))
print("up", flush=True)
sys.stdin.read()
"""


def _probe(command: list[str]) -> bool:
    try:
        return subprocess.run(command, capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def _free_on_host(kind: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM if kind == "udp" else socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


class Place:
    """A private network namespace (held by a sleeping process) or, without one, the host."""

    def __init__(self) -> None:
        self.unshare: list[str] | None = None
        self.skip: str | None = None
        if shutil.which("unshare") and shutil.which("nsenter"):
            for flags in (["--user", "--map-root-user", "--net"], ["--net"]):
                if _probe(["unshare", *flags, "true"]):
                    self.unshare = flags
                    break
        if self.unshare is None:
            busy = [f"{port}/{kind}" for kind, port in DEMO_PORTS if not _free_on_host(kind, port)]
            if busy:
                self.skip = (f"no network namespace here (unshare) and the demo's ports {', '.join(busy)} are in "
                             "use on the host: the examples need 127.0.0.1:1812, 1813, 8080 and 3799")
        self.holder: subprocess.Popen[str] | None = None

    def enter(self) -> None:
        if self.unshare is None:
            return
        self.holder = subprocess.Popen(["unshare", *self.unshare, sys.executable, "-c", _LO_UP],
                                       stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.holder.stdout is not None and self.holder.stdout.readline() == "up\n"

    def prefix(self) -> list[str]:
        """The command prefix that runs a program in this place."""
        if self.holder is None:
            return []
        user = ["--user", "--preserve-credentials"] if "--user" in (self.unshare or []) else []
        return ["nsenter", f"--target={self.holder.pid}", "--net", *user]

    def leave(self) -> None:
        if self.holder is not None:
            assert self.holder.stdin is not None
            self.holder.stdin.close()
            self.holder.wait(10)
            self.holder = None


_NOT_LINKED = {"data", "home", "bin", ".git", ".pytest_cache", ".mypy_cache", ".ruff_cache"}


@dataclass
class Result:
    code: int
    output: str
    seconds: float


@dataclass
class DocRun:
    """One document's blocks, in order, against one `quotad demo` in a scratch directory."""

    file: str
    scratch: Path
    place: Place
    results: dict[int, Result] = field(default_factory=dict)
    error: str = ""  # why the document could not be run at all
    gateway_log: str = ""
    demo_log: str = ""

    def env(self) -> dict[str, str]:
        path = f"{self.scratch / 'bin'}:{Path(sys.executable).parent}:{os.environ.get('PATH', '/usr/bin:/bin')}"
        return {"PATH": path, "HOME": str(self.scratch / "home"), "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8",
                "TERM": "dumb"}

    def prepare(self) -> None:
        (self.scratch / "home").mkdir(parents=True)
        (self.scratch / ".docs").mkdir()
        for item in REPO.iterdir():  # the checkout, but not its demo's data or caches
            if item.name not in _NOT_LINKED:
                (self.scratch / item.name).symlink_to(item)
        bin_dir = self.scratch / "bin"
        bin_dir.mkdir()
        for command, module in (("quotad", "quotad.cli"), ("quotad-sim", "simulators.cli")):
            shim = bin_dir / command
            shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m {module} "$@"\n')
            shim.chmod(0o755)

    def start(self, timeout: float = 30.0) -> tuple[subprocess.Popen[bytes], subprocess.Popen[str] | None]:
        log = open(self.scratch / ".docs" / "demo.log", "wb")  # noqa: SIM115 (outlives this call)
        demo = subprocess.Popen([*self.place.prefix(), "quotad", "demo"], cwd=self.scratch, env=self.env(),
                                stdout=log, stderr=subprocess.STDOUT)
        log.close()
        deadline = time.monotonic() + timeout
        while "Stop: Ctrl-C" not in self.read_demo_log():
            if demo.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"quotad demo did not start:\n{self.read_demo_log()}")
            time.sleep(0.05)
        listener = None
        if self.file in SHOWN_AT_THE_GATEWAY:
            listener = subprocess.Popen(
                [*self.place.prefix(), sys.executable, str(REPO / "tests/e2e/docs_coa_listener.py"), "127.0.0.1",
                 "3799", "testing123", str(self.scratch / ".docs" / "gateway.log")],
                cwd=self.scratch, env=self.env(), stdout=subprocess.PIPE, text=True)
            assert listener.stdout is not None and listener.stdout.readline() == "listening\n"
        return demo, listener

    def read_demo_log(self) -> str:
        return (self.scratch / ".docs" / "demo.log").read_text(errors="replace")

    def run_block(self, n: int, block: Block, names: list[str]) -> Result:
        script = self.scratch / ".docs" / f"block-{n}.sh"
        state = self.scratch / ".docs" / "vars.sh"
        keep = f'declare -p {" ".join(names)} > "{state}" 2>/dev/null || true\n' if names else ""
        script.write_text(f'set -eo pipefail\nif [ -f "{state}" ]; then . "{state}"; fi\n{block.text}{keep}')
        slow = listed(SLOW, block) is not None
        started = time.monotonic()
        try:
            done = subprocess.run([*self.place.prefix(), "bash", str(script)], cwd=self.scratch, env=self.env(),
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                  timeout=900 if slow else 120)
            code, output = done.returncode, done.stdout
        except subprocess.TimeoutExpired as exc:
            code, output = -1, f"{exc.output or ''}\n(timed out after {exc.timeout} s)"
        return Result(code, output, time.monotonic() - started)

    def run(self) -> None:
        self.prepare()
        self.place.enter()
        demo, listener = None, None
        try:
            demo, listener = self.start()
            names: list[str] = []
            for n, block in enumerate(sh_blocks(self.file)):
                if not runs(block):
                    continue
                assigned = re.findall(r"^\s*([A-Za-z_]\w*)=", block.text, re.M)
                names += [v for v in assigned if v not in names and v not in ("PATH", "HOME")]
                self.results[block.line] = self.run_block(n, block, names)
        finally:
            for proc in (listener, demo):
                if proc is not None and proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
                    try:
                        proc.wait(15)
                    except subprocess.TimeoutExpired:
                        proc.kill()
                        proc.wait()
            self.place.leave()
            self.demo_log = self.read_demo_log() if (self.scratch / ".docs" / "demo.log").exists() else ""
            gateway = self.scratch / ".docs" / "gateway.log"
            self.gateway_log = gateway.read_text() if gateway.exists() else ""


class DocRuns:
    """Each document run once, when a test first asks for one of its blocks."""

    def __init__(self, factory: pytest.TempPathFactory) -> None:
        self.factory = factory
        self.place = Place()
        self.done: dict[str, DocRun] = {}

    def of(self, file: str) -> DocRun:
        if self.place.skip:
            pytest.skip(self.place.skip)
        absent = sorted({t for b in sh_blocks(file) if runs(b) for t in tools_of(b)} - _installed())
        if absent:
            pytest.skip(f"not installed: {' and '.join(absent)}, which the examples of {file} use "
                        "(radclient: Debian freeradius-utils)")
        if file not in self.done:
            run = DocRun(file, self.factory.mktemp(re.sub(r"\W", "-", file)), self.place)
            self.done[file] = run
            try:
                run.run()
            except Exception as exc:  # reported by every test of the document
                run.error = f"{type(exc).__name__}: {exc}"
        run = self.done[file]
        assert not run.error, f"{file} could not be run: {run.error}"
        return run


def _installed() -> set[str]:
    return {t for t in ("radclient", "curl") if shutil.which(t)}


@pytest.fixture(scope="module")
def docs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DocRuns]:
    yield DocRuns(tmp_path_factory)


# --- the tests ----------------------------------------------------------------------------------


def test_the_lists_name_existing_blocks() -> None:
    """Each SKIPPED, SLOW and EXPECT entry names exactly one sh block of its document, and no block
    is both skipped and slow: a block edited away, or a piece of text now in two blocks, fails here."""
    for table in (SKIPPED, SLOW, EXPECT):
        for file, piece in table:
            assert file in DOCS, file
            hits = [b.line for b in sh_blocks(file) if piece in b.text]
            assert len(hits) == 1, f"{file}: {piece!r} is in the sh blocks at lines {hits}"
    for block in ALL_BLOCKS:
        assert not (listed(SKIPPED, block) and listed(SLOW, block)), block.id
    for file, firsts in SHOWN_AT_THE_GATEWAY.items():
        for first in firsts:
            assert [b for b in parse(file) if b.lang == "" and b.text.startswith(first + "\n")], (file, first)


def test_the_try_it_and_gateway_examples_are_run() -> None:
    """The README's "Try it" and gateway-integration §6 ("Trying it with radclient") run whole."""
    text = (REPO / "README.md").read_text()
    try_it = text[text.index("## Try it"):text.index("\n## ", text.index("## Try it") + 1)]
    readme = [b for b in sh_blocks("README.md") if b.text in try_it]
    guide = (REPO / "docs/gateway-integration.md").read_text()
    section = guide[guide.index("## 6. Trying it with radclient"):guide.index("## 7.")]
    gateway = [b for b in sh_blocks("docs/gateway-integration.md") if b.text in section]
    assert len(readme) >= 4 and len(gateway) >= 6
    assert all(runs(b) and listed(SLOW, b) is None for b in readme + gateway)
    assert sum(b.output is not None for b in readme) >= 3 and sum(b.output is not None for b in gateway) >= 1


@pytest.mark.parametrize("block", ALL_BLOCKS, ids=[b.id for b in ALL_BLOCKS])
def test_example(block: Block, docs: DocRuns) -> None:
    why = listed(SKIPPED, block)
    if why is not None:
        pytest.skip(f"not run: {why}")
    slow = listed(SLOW, block)
    if slow is not None and os.environ.get(SLOW_ENV) != "1":
        pytest.skip(f"slow ({slow}): run with {SLOW_ENV}=1")
    run = docs.of(block.file)
    result = run.results[block.line]
    context = f"{block.id} exited {result.code} after {result.seconds:.1f} s:\n{block.text}\n--- output:\n" \
              f"{result.output}\n--- quotad demo:\n{run.demo_log[-4000:]}"
    assert result.code == 0, context
    if block.output is not None:
        assert missing_lines(block.output, result.output) == [], context
    for piece in next((parts for (f, p), parts in EXPECT.items() if f == block.file and p in block.text), ()):
        assert piece in result.output, f"{piece!r} not printed\n{context}"


@pytest.mark.parametrize("file", sorted(SHOWN_AT_THE_GATEWAY))
def test_what_the_gateway_receives(file: str, docs: DocRuns) -> None:
    """The CoA-Request (and the like) a document shows arrives at the gateway's listener as shown."""
    run = docs.of(file)
    for first in SHOWN_AT_THE_GATEWAY[file]:
        shown = next(b for b in parse(file) if b.lang == "" and b.text.startswith(first + "\n"))
        assert missing_lines(shown.text, run.gateway_log) == [], f"{file}:{shown.line}\n{run.gateway_log}"


def test_masking() -> None:
    assert masked("Received Access-Accept Id 135 from 127.0.0.1:1812 to 127.0.0.1:55976 length 169") == (
        "Received Access-Accept Id N from 127.0.0.1:1812 to 127.0.0.1:PORT length 169")
    assert masked("\tMessage-Authenticator = 0xb6f59153bf2b8ba4f6854d72b660bdd8") == "Message-Authenticator = 0x…"
    assert masked("   Event-Timestamp = 1795445287") == "Event-Timestamp = …"
    assert missing_lines("a\n…\nc\n", "a\nb\nc\n") == []
    assert missing_lines("c\na\n", "a\nb\nc\n") == ["a"]
