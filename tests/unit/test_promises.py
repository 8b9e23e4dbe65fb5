"""The promise table (tests/README.md) and tests/promises.py say the same, every row is held by
a test, and the check itself allows what a row says and no more."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.promises import LOG_ENV, PROMISES, Promise, hold, summarize

TESTS = Path(__file__).resolve().parent.parent
ROW = re.compile(
    r"^\| `(?P<row>[a-z0-9-]+)` \| (?P<points>[\d.]+) points?(?: or (?P<words>\d+) words?)? \|"
)


def table() -> dict[str, tuple[float, int]]:
    rows = {}
    for line in (TESTS / "README.md").read_text(encoding="utf-8").splitlines():
        match = ROW.match(line)
        if match:
            points = float(match["points"]) / 100
            rows[match["row"]] = (round(points, 4), int(match["words"] or 0))
    return rows


def test_the_table_lists_every_promise_with_its_margin() -> None:
    listed = table()
    assert set(listed) == set(PROMISES)
    for row, promise in PROMISES.items():
        assert listed[row] == (round(promise.points, 4), promise.words), row


def test_every_promise_is_held_by_a_test() -> None:
    sources = [
        p.read_text(encoding="utf-8")
        for p in TESTS.rglob("test_*.py")
        if p.name != "test_promises.py"
    ]
    for row in PROMISES:
        assert any(f'"{row}"' in source for source in sources), f"no test holds {row!r}"


def test_the_allowance_is_the_points_or_the_words_whichever_is_more() -> None:
    promise = Promise(0.02, 1, "")
    assert promise.allowance(200) == 0.02  # one word is 0.5 points
    assert promise.allowance(20) == 0.05  # one word is 5 points
    assert Promise(0.01, 0, "").allowance(10) == 0.01


def test_hold_allows_the_margin_and_no_more(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    log = tmp_path / "promises.jsonl"
    monkeypatch.setenv(LOG_ENV, str(log))
    monkeypatch.setenv("CT2_USE_MKL", "0")
    text = " ".join(["palavra"] * 100)
    points = PROMISES["batch-vs-whole-file"].points
    hold("batch-vs-whole-file", 0.20 + points, 0.20, text)  # exactly the margin: holds
    with pytest.raises(AssertionError, match="batch-vs-whole-file"):
        hold("batch-vs-whole-file", 0.20 + points + 0.01, 0.20, text)
    hold("prefix-vs-whole-window", 0.0, 0.0, text)
    with pytest.raises(KeyError):
        hold("no-such-row", 0.0, 0.0, text)
    entries = [json.loads(line) for line in log.read_text().splitlines()]
    assert len(entries) == 3 and {e["backend"] for e in entries} == {"oneDNN"}
    assert entries[0]["words"] == 100
    summary = summarize([str(log)])
    assert "| batch-vs-whole-file | oneDNN | 2 |" in summary
