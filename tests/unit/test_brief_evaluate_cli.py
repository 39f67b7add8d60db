"""`python -m tools.brief.evaluate` scores several sets in one run (the README's evaluation
commands were one process per set, 55 of them, each paying the imports)."""

from __future__ import annotations

import json

import pytest

from tools.brief.dataset import HANDWRITTEN, load_heldout
from tools.brief.evaluate import evaluate_parser, main


def test_several_splits_print_one_line_each_keyed_by_name(
    capsys: pytest.CaptureFixture[str],
) -> None:
    main(["--path", "rules", "--split", "unseen49", "unseen50"])
    lines = capsys.readouterr().out.splitlines()
    got = [json.loads(line) for line in lines]
    assert [list(g) for g in got] == [["unseen49"], ["unseen50"]]
    alone = evaluate_parser("rules", load_heldout(HANDWRITTEN["unseen50"]))
    assert got[1]["unseen50"]["field_accuracy"] == alone["field_accuracy"]
    assert len(got[1]["unseen50"]["failures"]) == min(10, len(alone["failures"]))


def test_one_split_prints_as_before(capsys: pytest.CaptureFixture[str]) -> None:
    main(["--path", "rules", "--split", "unseen49"])
    out = json.loads(capsys.readouterr().out)
    assert out["path"] == "rules" and out["n"] == 30


def test_an_unknown_split_is_refused_by_name(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--split", "unseen49", "unseen999"])
    assert "unseen999" in capsys.readouterr().err
