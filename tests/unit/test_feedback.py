"""Reviewers' ratings kept for training (issue #14): what a rating records, the TRL export
(DPO pairs exactly as specified, SFT rows), the dashboard's figures, tenant scoping and
erasure with the thread."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from cli.main import app as rmn
from tools.brief.schema import StructuredBrief
from tools.plan import CopyVariant, GroundedText, Plan
from tools.plan.erase import erase_thread_records
from tools.plan.feedback import (
    FeedbackError,
    FeedbackIn,
    FeedbackStore,
    copy_output,
    dpo_pairs,
    feedback_path,
    feedback_stats,
    rated_item,
    sft_rows,
)

PROMPT_A = [{"role": "user", "content": "Write copy for Crunchy Chips at Alpha Mart."}]
PROMPT_B = [{"role": "user", "content": "Write copy for Oat Bars at Beta Grocers."}]
RATIONALE_PROMPT = [{"role": "user", "content": "Facts: spend $40k. Say why this split."}]


def _variant(retailer: str, headline: str, prompt: list[dict[str, str]] | None) -> CopyVariant:
    return CopyVariant(retailer_id=retailer, gtin="1", headline=headline, body=f"{headline} body.",
                       compliant=True, adapters=["retailer/alpha@v1", "task/creative@v2"],
                       path="llm" if prompt else "fallback", prompt=prompt)  # fmt: skip


def _plan(thread: str, tenant: str = "acme", headlines: tuple[str, ...] = ("Crisp",)) -> Plan:
    copy = [_variant("alpha", h, PROMPT_A) for h in headlines]
    copy += [_variant("beta", "Oats", PROMPT_B), _variant("beta", "Template", None)]
    text = GroundedText(kind="allocation", text="Alpha Mart gets most.", path="model",
                        adapters=["task/rationale@v1"], prompt=RATIONALE_PROMPT)  # fmt: skip
    return Plan(thread_id=thread, tenant=tenant, brief_text="Spend $45,000",
                brief=StructuredBrief(brand_id="acme", total_budget=45_000),
                copy=copy, rationale=[text])  # fmt: skip


def _rate(store: FeedbackStore, plan: Plan, reviewer: str, **rating: object) -> None:
    body = FeedbackIn.model_validate(rating)
    store.add(tenant=plan.tenant, thread_key=plan.thread_id, thread_id=plan.thread_id,
              item=rated_item(plan, body), rating=body, reviewer=reviewer)  # fmt: skip


def test_a_rating_keeps_the_exact_model_input_output_adapters_and_reviewer(
    tmp_path: Path,
) -> None:
    store = FeedbackStore(feedback_path(tmp_path))
    plan = _plan("t-1")
    _rate(store, plan, "key-aaaaaaaaaaaa", target="copy", index=0, thumbs="down", score=2,
          corrected="Crunchier than ever\nMade for sharing.")  # fmt: skip
    _rate(store, plan, "key-aaaaaaaaaaaa", target="rationale", kind="allocation", thumbs="up")
    _rate(store, plan, "key-aaaaaaaaaaaa", target="copy", index=2, thumbs="down")
    _rate(store, plan, "key-bbbbbbbbbbbb", target="plan", decision="rejected",
          reason="too much on display")  # fmt: skip
    copy, text, fallback, why = store.list("acme")
    assert copy.prompt == PROMPT_A and copy.output == copy_output("Crisp", "Crisp body.")
    assert copy.adapters == ["retailer/alpha@v1", "task/creative@v2"] and copy.written_by == "llm"
    assert copy.reviewer == "key-aaaaaaaaaaaa" and copy.retailer == "alpha"
    assert copy.item == "copy 1" and copy.thumbs == "down" and copy.score == 2
    # a corrected copy is kept in the model's answer format
    assert copy.corrected == copy_output("Crunchier than ever", "Made for sharing.")
    assert text.prompt == RATIONALE_PROMPT and text.output == "Alpha Mart gets most."
    assert text.adapters == ["task/rationale@v1"]
    assert fallback.prompt is None and fallback.written_by == "fallback"  # template: no prompt
    assert why.task == "plan" and why.reason == "too much on display"
    assert why.decision == "rejected" and why.reviewer == "key-bbbbbbbbbbbb"


def test_ratings_that_say_nothing_or_point_nowhere_are_refused() -> None:
    with pytest.raises(ValidationError, match="needs thumbs, a score"):
        FeedbackIn(target="copy", index=0)
    with pytest.raises(ValidationError, match="needs its index"):
        FeedbackIn(target="copy", thumbs="up")
    with pytest.raises(ValidationError, match="decision"):
        FeedbackIn(target="plan", reason="no")
    with pytest.raises(ValidationError):
        FeedbackIn(target="copy", index=0, score=6)
    with pytest.raises(ValidationError):
        FeedbackIn(target="copy", index=0, thumbs="up", extra=1)  # type: ignore[call-arg]
    with pytest.raises(FeedbackError, match="no variant at index 9"):
        rated_item(_plan("t"), FeedbackIn(target="copy", index=9, thumbs="up"))
    with pytest.raises(FeedbackError, match="no experiment rationale"):
        rated_item(_plan("t"), FeedbackIn(target="rationale", kind="experiment", thumbs="up"))


def test_dpo_export_pairs_exactly_as_specified(tmp_path: Path) -> None:
    """Corrected over the original; thumbs up over thumbs down for the same prompt; nothing
    from template text, plan reasons or ratings that have no opposite."""
    store = FeedbackStore(feedback_path(tmp_path))
    first = _plan("t-1", headlines=("Crisp",))
    second = _plan("t-2", headlines=("Soggy",))  # the same prompt answered another way
    _rate(store, first, "key-a", target="copy", index=0, thumbs="up")
    _rate(store, second, "key-a", target="copy", index=0, thumbs="down")
    _rate(store, second, "key-b", target="copy", index=0, thumbs="down")  # same pair again
    _rate(store, first, "key-a", target="rationale", kind="allocation", score=2,
          corrected="Alpha Mart gets 60% because its curve is steepest.")  # fmt: skip
    _rate(store, first, "key-a", target="copy", index=1, thumbs="up")  # no opposite: no pair
    _rate(store, first, "key-a", target="copy", index=2, thumbs="down",
          corrected="Better template")  # template: no prompt, never exported  # fmt: skip
    _rate(store, first, "key-a", target="plan", decision="edited", reason="floor too low")
    other = _plan("t-9", tenant="globex", headlines=("Crisp",))
    _rate(store, other, "key-g", target="copy", index=0, thumbs="down")  # another tenant
    pairs = dpo_pairs(store.list("acme"))
    assert pairs == [
        {"prompt": RATIONALE_PROMPT,
         "chosen": [{"role": "assistant",
                     "content": "Alpha Mart gets 60% because its curve is steepest."}],
         "rejected": [{"role": "assistant", "content": "Alpha Mart gets most."}],
         "task": "rationale", "tenant": "acme"},
        {"prompt": PROMPT_A,
         "chosen": [{"role": "assistant", "content": copy_output("Crisp", "Crisp body.")}],
         "rejected": [{"role": "assistant", "content": copy_output("Soggy", "Soggy body.")}],
         "task": "copy", "tenant": "acme"},
    ]  # fmt: skip
    # The other tenant's thumbs down is not the acme prompt's opposite.
    assert len(dpo_pairs(store.list())) == 2
    rows = sft_rows(store.list("acme"))
    answers = [r["messages"][-1]["content"] for r in rows]
    assert answers == [
        copy_output("Crisp", "Crisp body."),
        "Alpha Mart gets 60% because its curve is steepest.",
        copy_output("Oats", "Oats body."),
    ]
    assert rows[0]["messages"][:-1] == PROMPT_A


def test_stats_count_agreement_and_the_worst_rated(tmp_path: Path) -> None:
    store = FeedbackStore(feedback_path(tmp_path))
    plan = _plan("t-1")
    _rate(store, plan, "key-a", target="copy", index=0, thumbs="up", score=4)
    _rate(store, plan, "key-b", target="copy", index=0, thumbs="down", score=2)
    _rate(store, plan, "key-a", target="copy", index=1, thumbs="down")
    _rate(store, plan, "key-b", target="copy", index=1, thumbs="down")
    _rate(store, plan, "key-a", target="rationale", kind="allocation", thumbs="up")
    _rate(store, plan, "key-a", target="plan", decision="rejected", reason="no")
    s = feedback_stats(store.list("acme"))
    assert s.ratings == 6 and s.by_task == {"copy": 4, "rationale": 1, "plan": 1}
    assert (s.up, s.down, s.plan_reasons) == (2, 3, 1)
    # two items rated by two reviewers: one pair agrees, one does not
    assert s.items_rated_by_several == 2 and s.agreement == 0.5
    assert [b.name for b in s.worst_retailers] == ["beta", "alpha"]
    assert s.worst_retailers[0].down_share == 1.0 and s.worst_retailers[1].down_share == 0.5
    assert [b.name for b in s.worst_tasks] == ["copy", "rationale"]


def test_ratings_are_tenant_scoped_and_erased_with_their_thread(tmp_path: Path) -> None:
    store = FeedbackStore(feedback_path(tmp_path))
    mine, theirs = _plan("acme.t-1"), _plan("acme.t-1", tenant="globex")
    _rate(store, mine, "key-a", target="copy", index=0, thumbs="up")
    _rate(store, theirs, "key-g", target="copy", index=0, thumbs="up")
    assert [r.tenant for r in store.list("acme")] == ["acme"]
    erased = erase_thread_records(tmp_path, tmp_path / "reports", tenant="acme",
                                  thread_id="acme.t-1")  # fmt: skip
    assert erased.feedback == 1
    assert store.list("acme") == [] and [r.tenant for r in store.list()] == ["globex"]
    # secure delete: the erased row's reviewer is nowhere in the files any more
    assert not any(b"key-a" in p.read_bytes() for p in tmp_path.glob("feedback.sqlite*"))


def test_rmn_feedback_export_and_stats(tmp_path: Path) -> None:
    store = FeedbackStore(feedback_path(tmp_path))
    _rate(store, _plan("t-1"), "key-a", target="copy", index=0, thumbs="up")
    _rate(store, _plan("t-2", headlines=("Soggy",)), "key-a", target="copy", index=0,
          thumbs="down")  # fmt: skip
    out = tmp_path / "pairs.jsonl"
    runner = CliRunner()
    done = runner.invoke(rmn, ["feedback", "export", "--format", "dpo", "--out", str(out),
                               "--data-dir", str(tmp_path), "--json"])  # fmt: skip
    assert done.exit_code == 0, done.output
    assert json.loads(done.output)["rows"] == 1
    [row] = [json.loads(line) for line in out.read_text().splitlines()]
    assert set(row) >= {"prompt", "chosen", "rejected"} and row["prompt"] == PROMPT_A
    stats = runner.invoke(rmn, ["feedback", "stats", "--data-dir", str(tmp_path)])
    assert stats.exit_code == 0 and "2 ratings" in stats.output and "alpha" in stats.output
    missing = runner.invoke(rmn, ["feedback", "stats", "--data-dir", str(tmp_path / "none")])
    assert missing.exit_code == 0 and "0 ratings" in missing.output, missing.output
    assert not (tmp_path / "none").exists()  # nothing created to say so
