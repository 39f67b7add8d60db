"""Ad copy: rule fixes, template fallback, the generate-check-fix-regenerate loop on a tiny
random model (garbage in, so every repair path runs), and one run on the real model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from creative_support import as_copy, review

from adapters.chat_model import RMNChatModel
from adapters.registry import AdapterAccessError
from adapters.runtime import Generation, Request
from adapters.testing import tiny_fingerprint, tiny_llama, tiny_runtime, write_random_adapter
from tools.creative import (
    CopyRequest,
    CreativeError,
    fallback_candidates,
    fix_copy,
    quality_issues,
    review_copy,
    write_copy,
    write_copy_many,
)
from tools.errors import UnknownRetailerError
from tools.policy import UnsupportedPlacementError
from tools.policy.compliance import AdCopy, brand_guide, capitalization_ok, retailer_policy
from tools.world.catalog import BRANDS, RETAILERS

pytestmark = pytest.mark.usefixtures("one_torch_thread")


# --- rule fixes -----------------------------------------------------------------------------


def test_over_long_headline_and_body_are_trimmed_at_words() -> None:
    policy = retailer_policy("gamma")
    limits = policy.creative.limits("instore_screen")
    copy = AdCopy(
        headline="Gentle everyday care for the whole family routine",
        body="Gentle daily care for sensitive skin. Made for everyday routines. Find it in "
        "the pharmacy aisle today.",
    )
    fixed, repaired = fix_copy(copy, policy, "instore_screen", "health_beauty")
    assert {"headline_too_long", "body_too_long"} <= set(repaired)
    assert len(fixed.headline) <= limits.max_headline_chars
    assert len(fixed.body) <= limits.max_body_chars
    assert copy.headline.startswith(fixed.headline) and fixed.headline
    assert fixed.body.endswith(".") and copy.body.startswith(fixed.body)
    assert review_copy(fixed, policy, "instore_screen", "health_beauty") == []


def test_headline_case_is_corrected_to_the_retailers_rule() -> None:
    gamma, delta = retailer_policy("gamma"), retailer_policy("delta")
    shouty = AdCopy(headline="Fresh Gentle Daily Care", body="Made for everyday routines.")
    fixed, repaired = fix_copy(shouty, gamma, "sponsored_product", "health_beauty")
    assert "capitalization" in repaired
    assert capitalization_ok(fixed.headline, gamma.creative.capitalization)
    assert fixed.headline.lower() == shouty.headline.lower()
    quiet = AdCopy(headline="Fresh gentle daily care", body="Made for everyday routines.")
    fixed, repaired = fix_copy(quiet, delta, "sponsored_product", "home_goods")
    assert "capitalization" in repaired
    assert capitalization_ok(fixed.headline, delta.creative.capitalization)


def test_required_disclaimer_is_attached() -> None:
    policy, guide = retailer_policy("gamma"), brand_guide("globex")
    copy = AdCopy(headline="Dermatologist tested", body="Gentle daily care.")
    before = review_copy(copy, policy, "sponsored_product", "health_beauty", guide)
    assert any(v.startswith("missing_disclaimer:") for v in before)
    fixed, repaired = fix_copy(copy, policy, "sponsored_product", "health_beauty", guide)
    assert any(r.startswith("missing_disclaimer:") for r in repaired)
    assert "Individual results may vary." in fixed.disclaimers
    assert review_copy(fixed, policy, "sponsored_product", "health_beauty", guide) == []


def test_discount_wording_the_retailer_refuses_is_removed() -> None:
    policy = retailer_policy("gamma")  # at most 40% off
    copy = AdCopy(headline="Vitamin gummies, now 60% off", body="Save 60% off today. Easy to take.")
    problems = review_copy(copy, policy, "sponsored_product", "vitamins")
    assert "discount_too_deep" in problems
    fixed, repaired = fix_copy(copy, policy, "sponsored_product", "vitamins")
    assert "discount_too_deep" in repaired
    assert "%" not in fixed.headline + fixed.body
    assert fixed.headline == "Vitamin gummies" and fixed.body == "Easy to take."


def test_emoji_exclamations_shouting_and_banned_brand_words_are_fixed() -> None:
    policy, guide = retailer_policy("gamma"), brand_guide("acme")
    copy = AdCopy(headline="Snack time 😀", body="GREAT crunch! Never cheap! Shop now!")
    before = review_copy(copy, policy, "sponsored_product", "snacks", guide)
    assert {"emoji", "too_many_exclamation_marks", "all_caps", "brand_banned:cheap"} <= set(before)
    fixed, _ = fix_copy(copy, policy, "sponsored_product", "snacks", guide)
    assert "😀" not in fixed.headline and "!" not in fixed.body
    assert "great value" in fixed.body and "cheap" not in fixed.body.lower()
    assert review_copy(fixed, policy, "sponsored_product", "snacks", guide) == []


def test_prohibited_claims_are_left_for_regeneration() -> None:
    policy = retailer_policy("gamma")
    copy = AdCopy(headline="A miracle for skin", body="Gentle daily care.")
    fixed, _ = fix_copy(copy, policy, "sponsored_product", "health_beauty")
    assert "prohibited:miracle" in review_copy(fixed, policy, "sponsored_product", "health_beauty")


def test_quality_issues_catch_model_debris() -> None:
    assert "markup" in quality_issues(AdCopy(headline="Chips</br>", body="Crunchy."))
    assert "unfinished_sentence" in quality_issues(AdCopy(headline="Chips", body="Add it to"))
    loop = AdCopy(headline="Now your snack", body="Now your weeknight. Now your day.")
    assert "repetitive" in quality_issues(loop)
    invented = AdCopy(headline="Sea salt, now 25 years", body="Crunchy. Aged 25 years.")
    assert "unsupported_number:25" in quality_issues(invented, "Acme Sea Salt Kettle Chips")
    claimed = AdCopy(headline="Broad spectrum SPF 50", body="Gentle daily care.")
    assert quality_issues(claimed, "Broad spectrum SPF 50") == []
    fixed, repaired = fix_copy(
        AdCopy(headline="Sea salt chips", body="Crunchy <b>and</b> fresh. Aged 25 years."),
        retailer_policy("alpha"),
        "sponsored_product",
        "snacks",
    )
    assert {"markup", "unsupported_number:25"} <= set(repaired)
    assert fixed.body == "Crunchy and fresh."
    # Stripping markup can expose a repetition: repairs run until nothing changes.
    debris = AdCopy(
        headline="Honey granola bars",
        body="Packed in snacks. Add it to your cart.</br>&Add it to your cart.</br>&Add it",
    )
    fixed, repaired = fix_copy(debris, retailer_policy("beta"), "display_offsite", "snacks")
    assert fixed.body == "Packed in snacks. Add it to your cart."
    assert {"markup", "repeated_sentence", "unfinished_sentence"} <= set(repaired)


@pytest.mark.parametrize(
    ("headline", "body", "product", "found"),
    [  # what SmolLM2-135M wrote in `rmn bench language --brand acme` and every check passed
        ("Fresh Tomato Taste", "No artificial colors or flavors, madefor chips.",
         "Acme Classic Salsa", "unknown_word:madefor"),
        ("No artificial colors or z", "A zesty kick, from Acme.", "Acme Classic Salsa",
         "unknown_word:z"),
        ("No artificial colors or flavo", "Fresh tomato taste. Made for chips.",
         "Acme Whole Grain Salsa", "cut_phrase:no artificial colors or flavors"),
        ("Your Family's Bestnight Practice", "Easy drawstring ties to most cans.",
         "Acme Unscented Trash Bags", "unknown_word:Bestnight"),
        ("Family favorite", "Crisp, cheesy bites. Crumbars.", "Acme Cheddar Crackers",
         "unknown_word:Crumbars"),
        ("No artificial colors or", "Fresh tomato taste. Made for chips.", "Acme Classic Salsa",
         "dangling_headline"),
    ],
)  # fmt: skip
def test_words_that_are_not_words_and_cut_phrases_are_caught(
    headline: str, body: str, product: str, found: str
) -> None:
    """Bug: the decode grammar lets any run of letters be a word and stops a headline at the
    limit wherever that falls, and `review_copy` passed all of these as compliant."""
    copy = AdCopy(headline=headline, body=body)
    assert found in review_copy(
        copy, retailer_policy("alpha"), "display_onsite", "grocery", brand_guide("acme"), product
    )


def test_words_of_the_brief_the_templates_and_the_product_pass() -> None:
    guide, policy = brand_guide("globex"), retailer_policy("gamma")
    copy = AdCopy(headline="Big taste, good vibes", body="Made for busy weeknights. Shop now.")
    assert review_copy(copy, policy, "sponsored_product", "health_beauty", guide) == []
    vitamin = AdCopy(headline="Tasty daily habit", body="Vitamin C - chewable tablets.")
    assert "unknown_word:C" not in review_copy(
        vitamin, policy, "sponsored_product", "vitamins", guide, "Globex Vitamin C Gummies"
    )
    assert "unknown_word:C" in review_copy(vitamin, policy, "sponsored_product", "vitamins", guide)


def test_words_that_are_not_words_are_parted_trimmed_or_dropped() -> None:
    copy = AdCopy(headline="Family favorite", body="Crisp, cheesy bites. Crumbars.")
    fixed, repaired = fix_copy(copy, retailer_policy("alpha"), "display_onsite", "snacks")
    assert fixed.body == "Crisp, cheesy bites." and "unknown_word:Crumbars" in repaired
    fused = AdCopy(headline="Fresh taste", body="A zesty kick, madefor chips.")
    parted, repaired = fix_copy(fused, retailer_policy("alpha"), "display_onsite", "grocery")
    assert parted.body == "A zesty kick, made for chips." and "unknown_word:madefor" in repaired
    cut = AdCopy(headline="Salsa night, part of a i", body="Fresh tomato taste in every jar.")
    trimmed, repaired = fix_copy(cut, retailer_policy("alpha"), "display_onsite", "grocery")
    assert trimmed.headline == "Salsa night" and "unknown_word:i" in repaired
    headline = AdCopy(headline="Bestnight crackers", body="Crisp, cheesy bites.")
    kept, _ = fix_copy(headline, retailer_policy("alpha"), "display_onsite", "snacks")
    assert "unknown_word:Bestnight" in review_copy(
        kept, retailer_policy("alpha"), "display_onsite", "snacks"
    )


# --- template fallback ----------------------------------------------------------------------


@pytest.mark.parametrize("brand", list(BRANDS))
def test_fallback_copy_passes_the_rules_everywhere(brand: str) -> None:
    requests = [CopyRequest(retailer_id=r, brand_id=brand, variants=2) for r in RETAILERS]
    results = write_copy_many(None, requests)
    for request, result in zip(requests, results, strict=True):
        assert result.attempts == 0
        assert len(result.variants) == 2, result.failures
        keys = {(v.headline, v.body) for v in result.variants}
        assert len(keys) == 2  # variants differ
        policy = retailer_policy(request.retailer_id)
        allowed = [p for p in policy.placements if policy.bidding.allows(result.category, p)]
        tightest = min(policy.creative.limits(p).max_headline_chars for p in allowed)
        assert policy.creative.limits(result.placement).max_headline_chars == tightest
        for v in result.variants:
            assert v.path == "fallback" and v.adapters == [] and v.compliant
            assert v.retailer_id == request.retailer_id
            assert review(as_copy(v), request, result.placement, result.category) == []


def test_fallback_uses_the_brands_approved_claims() -> None:
    guide = brand_guide("globex")
    product = "Globex Fragrance-Free Daily Moisturizer"
    found = fallback_candidates(
        retailer_policy("gamma"), "sponsored_product", "health_beauty", guide, product
    )
    # The claims approved for this product, not for every health and beauty product.
    claims = {c.text.lower() for c in guide.claims_for_product(product, "health_beauty")}
    assert claims == {"dermatologist tested", "gentle enough for sensitive skin"}
    assert found and all(
        any(c in f"{x.headline} {x.body}".lower() for c in claims) for x in found[:3]
    )
    gamma = retailer_policy("gamma")
    for copy in found:
        assert review_copy(copy, gamma, "sponsored_product", "health_beauty", guide, product) == []


def test_a_category_the_retailer_refuses_gets_no_copy() -> None:
    request = CopyRequest(
        retailer_id="beta", brand_id="brand_x", category="alcohol", placement="display_offsite"
    )
    result = write_copy(None, request)
    assert result.variants == [] and "cannot be advertised" in result.failures[0]


def test_bad_requests_get_clear_errors() -> None:
    with pytest.raises(UnknownRetailerError, match="unknown retailer 'omega'"):
        write_copy(None, CopyRequest(retailer_id="omega", brand_id="acme"))
    with pytest.raises(UnsupportedPlacementError, match="onsite_video"):
        write_copy(None, CopyRequest(retailer_id="beta", brand_id="acme", placement="onsite_video"))
    with pytest.raises(CreativeError, match="unknown category"):
        write_copy(None, CopyRequest(retailer_id="beta", brand_id="acme", category="toys"))


# --- the loop on a tiny random model --------------------------------------------------------


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> RMNChatModel:
    """The tiny model with creative and brand adapters (stacked on task/creative, as the
    product trains them) and one retailer adapter (alpha); the other retailers have none, as in
    a registry where they are still being trained."""
    model, _ = tiny_llama()
    root = tmp_path_factory.mktemp("adapters")
    fp = tiny_fingerprint()
    for seed, (kind, name, owner) in enumerate(
        [
            ("retailer", "alpha", None),
            ("brand", "acme", "acme"),
            ("brand", "globex", "globex"),
            ("task", "creative", None),
        ],
        start=1,
    ):
        stack = "task/creative" if kind == "brand" else None
        write_random_adapter(
            root, kind, name, model, base_fingerprint=fp, owner_tenant=owner, seed=seed,
            stacked_on=stack,
        )  # fmt: skip
    return RMNChatModel(runtime=tiny_runtime(Path(root), decode="lora"))


class CountingRuntime:
    """Counts the batched calls a runtime receives, then hands them on."""

    def __init__(self, llm: RMNChatModel) -> None:
        self.calls: list[int] = []
        self.inner = llm.runtime.generate_many

    def __call__(self, requests, **kwargs):  # type: ignore[no-untyped-def]
        self.calls.append(len(requests))
        return self.inner(requests, **kwargs)


def test_garbage_is_fixed_regenerated_or_replaced_and_the_path_is_reported(
    tiny: RMNChatModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    counter = CountingRuntime(tiny)
    monkeypatch.setattr(tiny.runtime, "generate_many", counter)
    requests = [
        CopyRequest(retailer_id="alpha", brand_id="acme", product_name="Acme Honey Pretzel Twists"),
        CopyRequest(retailer_id="gamma", brand_id="globex", category="vitamins"),
    ]
    results = write_copy_many(tiny, requests, kinds=("retailer", "brand", "task"))
    # Round one sends all four variants of both retailers in one batched call.
    assert counter.calls[0] == 4 and len(counter.calls) <= 3
    expected_adapters = {  # each with the version served
        "alpha": ["retailer/alpha@v1", "brand/acme@v1", "task/creative@v1"],
        "gamma": ["brand/globex@v1", "task/creative@v1"],  # no retailer/gamma in the registry
    }
    paths = set()
    for request, result in zip(requests, results, strict=True):
        assert 1 <= result.attempts <= request.max_attempts
        assert len(result.variants) == request.variants
        assert result.category == ("snacks" if request.retailer_id == "alpha" else "vitamins")
        for v in result.variants:
            paths.add(v.path)
            assert review(as_copy(v), request, result.placement, result.category) == []
            assert v.compliant
            if v.path == "fallback":
                assert v.adapters == []
            else:
                assert v.adapters == expected_adapters[request.retailer_id]
            assert v.attempts >= 1
        # Whatever was dropped on the way is said, with the rule it broke.
        assert all(request.retailer_id in f for f in result.failures)
    assert paths  # every variant reports how it was made
    dropped = sum(len(r.failures) for r in results)
    made_by_model = sum(v.path != "fallback" for r in results for v in r.variants)
    # A random model writes nonsense: each variant it did not get right is in the failures.
    assert dropped >= 4 - made_by_model


class ScriptedRuntime:
    """The tiny runtime's registry with answers scripted per round: the loop's decisions
    (accept, fix, regenerate, fall back) checked one by one."""

    def __init__(self, llm: RMNChatModel, rounds: list[list[Generation]]) -> None:
        self.registry = llm.runtime.registry
        self.base_fingerprint = llm.runtime.base_fingerprint
        self.model_name = "scripted"
        self.rounds = rounds
        self.seen: list[list[Request]] = []

    def generate_many(self, requests: list[Request], **kwargs: object) -> list[Generation]:
        self.seen.append(list(requests))
        return self.rounds[len(self.seen) - 1][: len(requests)]


def answer(headline: str, body: str, **flags: object) -> Generation:
    text = json.dumps({"headline": headline, "body": body})
    return Generation(
        text=text,
        parsed={"headline": headline, "body": body},
        adapters_active=["task/creative"],
        **flags,  # type: ignore[arg-type]
    )


def test_each_path_is_taken_and_reported(tiny: RMNChatModel) -> None:
    bad_json = Generation(text='{"headline": "x', error="not complete JSON", fallback=True)
    rounds = [
        [
            answer("A Crunchzy snack", "Crunchy and fresh."),  # not a word: regenerate
            answer("Honey pretzel twists", "Crunchy and fresh. Shop now.", repaired=True),
            bad_json,
        ],
        [
            # Too long: a rule can cut it, but it is kept in reserve and asked again first.
            answer("Twisty pretzels for sharing with the whole family", "Made for sharing."),
            bad_json,
        ],
        [bad_json, bad_json],  # the reserve is taken
    ]
    scripted = RMNChatModel(runtime=ScriptedRuntime(tiny, rounds))
    request = CopyRequest(
        retailer_id="beta", brand_id="acme", product_name="Acme Honey Pretzel Twists", variants=3
    )
    result = write_copy(scripted, request)
    by_path = {v.path: v for v in result.variants}
    assert set(by_path) == {"repaired", "fixed", "fallback"} and result.attempts == 3
    assert by_path["repaired"].headline == "Honey pretzel twists"
    assert by_path["repaired"].attempts == 2  # the runtime's repair turn counts
    fixed = by_path["fixed"]
    limit = retailer_policy("beta").creative.limits(result.placement).max_headline_chars
    assert len(fixed.headline) <= limit and fixed.attempts == 2
    assert "Twisty pretzels for sharing with the whole family".startswith(fixed.headline)
    assert by_path["fallback"].attempts == 6 and by_path["fallback"].adapters == []
    # Each re-ask is the first turn from a new angle, never the refused answer (the model
    # copied it); its grammar bans the word that was not a word.
    runtime = scripted.runtime
    for first, again in ((runtime.seen[0][0], runtime.seen[1][0]),
                         (runtime.seen[0][2], runtime.seen[1][1])):  # fmt: skip
        assert len(again.messages) == 1 and "Angle:" in again.messages[0]["content"]
        assert again.messages[0] != first.messages[0]
    grammar = runtime.seen[1][0].json_schema.lark_text
    assert "crunchzy" not in runtime.seen[0][0].json_schema.lark_text and "crunchzy" in grammar
    assert any("unknown_word:Crunchzy" in f for f in result.failures)
    assert sum("no valid JSON" in f for f in result.failures) == 4
    assert any("fixable, kept in reserve (headline_too_long" in f for f in result.failures)


def _head_options(lark: str) -> list[str]:
    """The headlines a copy grammar lets the model choose among (its HEAD line)."""
    head = next(line for line in lark.splitlines() if line.startswith("HEAD: "))
    return [json.loads(h) for h in head.removeprefix("HEAD: ").split(" | ")]


def test_a_sentence_another_variant_wrote_is_cut_or_the_variant_asked_again(
    tiny: RMNChatModel,
) -> None:
    """No sentence appears in two variants: a repeated body sentence is cut where the rest
    stands on its own (path `fixed`, the model's adapters kept); a repeated headline cannot be
    cut, so that variant is asked for different copy."""
    rounds = [
        [
            answer("Family favorite", "Crunchy and golden. Add it to your cart."),
            answer("Made for families", "Salty and sweet. Add it to your cart."),
            answer("Family favorite", "Great on game night."),
        ],
        [answer("Snack time for the whole crew", "Great on game night.")],
    ]
    scripted = RMNChatModel(runtime=ScriptedRuntime(tiny, rounds))
    request = CopyRequest(
        retailer_id="beta", brand_id="acme", product_name="Acme Honey Pretzel Twists", variants=3
    )
    result = write_copy(scripted, request)
    first, second, third = result.variants
    assert (first.path, first.body) == ("llm", "Crunchy and golden. Add it to your cart.")
    assert (second.path, second.body) == ("fixed", "Salty and sweet.")
    assert second.adapters == first.adapters == ["task/creative@v1"]
    # The third repeated the first's headline: asked again, and its new copy is kept.
    assert (third.path, third.headline) == ("llm", "Snack time for the whole crew")
    retry = scripted.runtime.seen[1][0]
    assert len(retry.messages) == 1 and "Angle:" in retry.messages[0]["content"]
    # The repeated headline is no longer among the re-ask's headlines, and neither is any
    # other variant's: with only the repeated one banned, a re-ask wrote another variant's
    # (brand_x composed, the gate's seeds: 3 of seed 100's 4 template fallbacks had been
    # dropped for repeats, one on each of its three attempts).
    assert "Family favorite" in _head_options(scripted.runtime.seen[0][2].json_schema.lark_text)
    offered = _head_options(retry.json_schema.lark_text)
    assert "Family favorite" not in offered and "Made for families" not in offered
    assert "Snack time for the whole crew" in offered
    assert any("repeats beta variant 1: 'family favorite'" in f for f in result.failures)
    for v in result.variants:
        assert review(as_copy(v), request, result.placement, "snacks") == []


def test_default_binding_composes_retailer_brand_and_creative_adapters(
    tiny: RMNChatModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent: list[Request] = []
    generate_many = tiny.runtime.generate_many

    def spy(requests: list[Request], **kwargs: object) -> list[Generation]:
        sent.extend(requests)
        return generate_many(requests, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(tiny.runtime, "generate_many", spy)
    requests = [
        CopyRequest(retailer_id="alpha", brand_id="acme", max_attempts=1),
        CopyRequest(retailer_id="beta", brand_id="acme", max_attempts=1),
    ]
    results = write_copy_many(tiny, requests)
    # beta has no retailer adapter in this registry; the brand adapter is composed everywhere.
    assert [str(r.adapters) for r in sent] == ["retailer/alpha+brand/acme+task/creative"] * 2 + [
        "brand/acme+task/creative"
    ] * 2
    expected = {
        "alpha": ["retailer/alpha@v1", "brand/acme@v1", "task/creative@v1"],
        "beta": ["brand/acme@v1", "task/creative@v1"],
    }
    for request, result in zip(requests, results, strict=True):
        assert result.attempts == 1 and len(result.variants) == 2
        for v in result.variants:
            assert v.adapters == ([] if v.path == "fallback" else expected[request.retailer_id])
    # Every call is sampled with its own seed under the copy grammar.
    assert all(r.temperature > 0 and r.seed is not None for r in sent)
    assert len({r.seed for r in sent}) == len(sent)


def test_a_brand_adapter_not_trained_on_the_creative_adapter_is_left_out(
    tmp_path: Path,
) -> None:
    """A brand adapter trained alone, or stacked on another task/creative than the installed
    one (weights digest), is not composed with task/creative; one stacked on it is."""
    import hashlib

    from adapters.registry import AdapterMetadata, TrainingCard

    model, _ = tiny_llama()
    fp = tiny_fingerprint()
    for seed, (kind, name) in enumerate([("task", "creative"), ("brand", "acme")], start=1):
        owner = "acme" if kind == "brand" else None
        write_random_adapter(
            tmp_path, kind, name, model, base_fingerprint=fp, owner_tenant=owner, seed=seed
        )
    creative = (tmp_path / "task" / "creative" / "adapter_model.safetensors").read_bytes()
    digest = hashlib.sha256(creative).hexdigest()

    def bound(stacked: dict[str, str] | None) -> list[str]:
        """The adapters copy is generated with, the brand adapter's card recording `stacked`."""
        folder = tmp_path / "brand" / "acme"
        meta = AdapterMetadata.read(folder)
        card = meta.training.model_dump(exclude={"stacked_on"})
        card |= {"stacked_on": stacked} if stacked is not None else {}
        meta.model_copy(update={"training": TrainingCard(**card)}).write(folder)
        written = AdapterMetadata.read(folder).training.model_extra or {}
        assert written.get("stacked_on") == stacked
        llm = RMNChatModel(runtime=tiny_runtime(tmp_path, decode="lora"))
        sent: list[Request] = []
        generate_many = llm.runtime.generate_many

        def spy(requests: list[Request], **kwargs: object) -> list[Generation]:
            sent.extend(requests)
            return generate_many(requests, **kwargs)  # type: ignore[arg-type]

        llm.runtime.generate_many = spy  # type: ignore[method-assign]
        request = CopyRequest(retailer_id="beta", brand_id="acme", variants=1, max_attempts=1)
        write_copy(llm, request, kinds=("retailer", "brand", "task"))
        assert len(sent) == 1
        return sent[0].adapters.names

    assert bound(None) == ["task/creative"]
    assert bound({"adapter": "task/creative", "weights_sha256": "0" * 64}) == ["task/creative"]
    assert bound({"adapter": "task/planning", "weights_sha256": digest}) == ["task/creative"]
    both = ["brand/acme", "task/creative"]
    assert bound({"adapter": "task/creative", "weights_sha256": digest}) == both


def test_another_tenants_brand_adapter_is_refused(tiny: RMNChatModel) -> None:
    request = CopyRequest(retailer_id="alpha", brand_id="acme", tenant="globex")
    with pytest.raises(AdapterAccessError, match="belongs to tenant 'acme'"):
        write_copy(tiny, request, kinds=("brand", "task"))


# --- the real model -------------------------------------------------------------------------


# How long copy takes is measured by `rmn bench e2e` (creative seconds per variant), not here.


def test_copy_a_rule_could_fix_is_asked_again_first(tiny: RMNChatModel) -> None:
    """The model's own compliant copy is preferred to a rule's mend of its refused copy: the
    fixable copy waits in reserve while the variant is asked again."""
    rounds = [
        [answer("Twisty pretzels for sharing with the whole family", "Made for sharing.")],
        [answer("Snack time sorted", "Salty and sweet for game night.")],
    ]
    scripted = RMNChatModel(runtime=ScriptedRuntime(tiny, rounds))
    request = CopyRequest(
        retailer_id="beta", brand_id="acme", product_name="Acme Honey Pretzel Twists", variants=1
    )
    result = write_copy(scripted, request)
    (variant,) = result.variants
    assert (variant.path, variant.headline, variant.attempts) == ("llm", "Snack time sorted", 2)
    assert result.rule_breaks == [[["headline_too_long"], []]]
    assert any("fixable, kept in reserve" in f for f in result.failures)
