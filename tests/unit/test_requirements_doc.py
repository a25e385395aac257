"""docs/requirements.md defines every product rule the repository cites, and names only what exists.

The rule texts live outside the repository; docs/requirements.md states each of them. These tests
fail when the code, tests, simulators, docs or configuration cite a rule (the letter R, a hyphen
and a number; or a test function named ``test_r<n>_…``) that the page does not define, and when a
file, function or test the page names (``path`` or ``path::name`` in backquotes, or a relative
link) does not exist.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOC_PATH = ROOT / "docs" / "requirements.md"
DOC = DOC_PATH.read_text()

# What is searched for citations: the project's own files. The virtualenv, the egg-info and the
# embedded Redis's data lie outside these roots; inside them, hidden directories, caches, binary
# fuzz seeds and images are skipped, and so are the standard RADIUS dictionaries (RFC and 3GPP
# attributes in FreeRADIUS format), which are not the project's text.
SEARCHED_DIRS = ("quotad", "simulators", "tests", "docs", "config", "fuzz", "deploy")
SEARCHED_FILES = ("README.md", "Makefile", "pyproject.toml")
SKIPPED_DIRS = frozenset({"__pycache__", "corpus"})
SKIPPED_SUFFIXES = frozenset({".pyc", ".bin", ".jpg", ".jpeg", ".png"})
THIRD_PARTY = frozenset({
    "quotad/radius/dictionaries/dictionary.rfc",
    "quotad/radius/dictionaries/dictionary.3gpp",
})

# A rule citation: R-<number>, not part of a longer word ("PR-12" cites nothing) and with every
# digit of the number (a hundred and twenty-three is not twelve).
CITATION = re.compile(r"(?<![A-Za-z0-9_])R-([0-9]+)(?![0-9])")
# A test named for its rules: test_r21_r31_coupon_switch_by_customer cites.
TEST_FUNCTION = re.compile(r"^\s*(?:async\s+)?def\s+(test_\w+)\s*\(", re.M)
NAMED_RULE = re.compile(r"(?<=_)r([0-9]+)(?=_|$)")

HEADING = re.compile(r"^### R-([0-9]+) \S", re.M)
SUMMARY_ROW = re.compile(r"^\| R-([0-9]+) \| [^|]+ \| (yes|differs|no) \|$", re.M)
ROOTS = "|".join(SEARCHED_DIRS)
NAMED_PATH = re.compile(rf"`((?:{ROOTS})/[^`\s:]+)(?:::([A-Za-z_][\w.]*))?`")
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)\s]*)?\)")


def searched_files() -> Iterator[Path]:
    for name in SEARCHED_FILES:
        yield ROOT / name
    for top in SEARCHED_DIRS:
        for path in sorted((ROOT / top).rglob("*")):
            parts = path.relative_to(ROOT).parts
            if not path.is_file() or any(p.startswith(".") or p in SKIPPED_DIRS for p in parts):
                continue
            if path.suffix in SKIPPED_SUFFIXES or path.relative_to(ROOT).as_posix() in THIRD_PARTY:
                continue
            yield path


def text_of(path: Path) -> str | None:
    data = path.read_bytes()
    if b"\0" in data:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def citations() -> dict[int, list[str]]:
    """Every rule cited anywhere searched, with where ("path:line")."""
    found: dict[int, list[str]] = defaultdict(list)
    for path in searched_files():
        text = text_of(path)
        if text is None:
            continue
        where = path.relative_to(ROOT).as_posix()
        for number, at in cited_in(text):
            found[number].append(f"{where}:{at}")
    return found


def cited_in(text: str) -> Iterator[tuple[int, int]]:
    """(rule, line number) of each citation in a text: R-<n> anywhere, and test_r<n>_ names."""
    for match in CITATION.finditer(text):
        yield int(match.group(1)), text.count("\n", 0, match.start()) + 1
    for match in TEST_FUNCTION.finditer(text):
        for number in NAMED_RULE.findall(match.group(1)):
            yield int(number), text.count("\n", 0, match.start()) + 1


def defined() -> list[int]:
    return [int(n) for n in HEADING.findall(DOC)]


def sections() -> dict[int, str]:
    """The text of each rule's section, from its heading to the next heading."""
    parts = re.split(r"^(?=#{2,3} )", DOC, flags=re.M)
    out = {}
    for part in parts:
        match = HEADING.match(part)
        if match:
            out[int(match.group(1))] = part
    return out


def test_the_citation_patterns() -> None:
    # Built from pieces, so this file cites no rule itself.
    r = "R" + "-"
    text = f"({r}1, {r}12) PR-12 {r}7… {r}30 … {r}36 XR-5 {r}123x"
    assert [n for n, _ in cited_in(text)] == [1, 12, 7, 30, 36, 123]
    assert [n for n, _ in cited_in("async def test_r21_r31_coupon(x):\n    def test_rfc2865_r2(y):")] == [21, 31, 2]
    assert list(cited_in("def test_r70_rfc2865_example(): pass\ndef test_radius(): pass")) == [(70, 1)]


def test_every_rule_cited_is_defined() -> None:
    rules = set(defined())
    undefined = {f"R-{n}": where for n, where in sorted(citations().items()) if n not in rules}
    assert not undefined, f"cited but not defined in docs/requirements.md: {undefined}"


def test_the_search_reaches_code_tests_simulators_docs_and_config() -> None:
    places = {where.split(":", 1)[0] for wheres in citations().values() for where in wheres}
    tops = {place.split("/", 1)[0] for place in places}
    assert tops >= {"quotad", "simulators", "tests", "docs", "config", "fuzz", "README.md"}
    assert any(place.endswith(".lua") for place in places)
    assert "docs/requirements.md" in places


def test_each_rule_is_defined_once_in_order() -> None:
    numbers = defined()
    assert len(numbers) == len(set(numbers)), "a rule is defined twice"
    assert numbers == sorted(numbers)
    assert len(numbers) == 39


def test_the_summary_lists_exactly_the_defined_rules_and_counts_them() -> None:
    rows = SUMMARY_ROW.findall(DOC)
    assert [int(n) for n, _ in rows] == defined()
    statuses = [status for _, status in rows]
    counted = re.search(r"Counted: (\d+) rules defined, (\d+) implemented \((\d+) of them with a difference"
                        r"[^)]*\), (\d+)\s+not implemented", DOC)
    assert counted is not None
    total, implemented, differing, missing = (int(g) for g in counted.groups())
    assert total == len(rows)
    assert implemented == statuses.count("yes") + statuses.count("differs")
    assert differing == statuses.count("differs")
    assert missing == statuses.count("no")


def test_each_rule_names_its_code_and_tests_and_says_where_it_differs() -> None:
    status = {int(n): s for n, s in SUMMARY_ROW.findall(DOC)}
    for number, text in sections().items():
        assert "\n- **Code:**" in text and "\n- **Tests:**" in text, f"R-{number}"
        if status[number] == "no":
            assert "**Not implemented.**" in text, f"R-{number}"
        else:
            assert NAMED_PATH.search(text.split("- **Code:**", 1)[1].split("- **Tests:**", 1)[0]), f"R-{number}"
            assert "`tests/" in text.split("- **Tests:**", 1)[1], f"R-{number}"
        if status[number] == "differs":
            assert "**Differs from the specification:**" in text, f"R-{number}"


def named() -> list[tuple[str, str]]:
    """(path, name) of each `path` or `path::name` the page names; name is "" for a bare path."""
    return sorted(set(NAMED_PATH.findall(DOC)))


def definition(name: str) -> re.Pattern[str]:
    """A Python def or class, a Lua local function, or a module-level assignment of that name."""
    last = re.escape(name.rsplit(".", 1)[-1])
    return re.compile(rf"^\s*(?:(?:async\s+)?def|class|local\s+function)\s+{last}\b|^{last}\s*[:=]", re.M)


def test_every_file_function_and_test_named_exists() -> None:
    missing = []
    for path, name in named():
        matches = sorted(ROOT.glob(path)) if "*" in path else [ROOT / path]
        if not matches or not all(p.is_file() for p in matches):
            missing.append(f"{path}: no such file")
            continue
        if name:
            text = "".join(p.read_text() for p in matches)
            owner = name.rpartition(".")[0]
            for part in filter(None, (name, owner)):
                if not definition(part).search(text):
                    missing.append(f"{path}: defines no {part}")
    assert not missing, "docs/requirements.md names what does not exist:\n" + "\n".join(missing)


def test_the_page_names_files_of_each_kind() -> None:
    paths = {path for path, _ in named()}
    assert {p.split("/", 1)[0] for p in paths} >= {"quotad", "tests", "simulators", "config"}
    assert sum(1 for _, name in named() if name and name.startswith("test_")) > 200


def test_every_relative_link_resolves() -> None:
    for target in LINK.findall(DOC):
        if "://" in target:
            continue
        assert (DOC_PATH.parent / target).resolve().exists(), target
