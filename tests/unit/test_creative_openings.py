"""The model's copy grammar with a forced body opening (`CopyFacts.openings`,
`CopyGrammar.with_opening`), checked through llguidance with SmolLM2's tokenizer, and the
bench's count of what the model's copy broke (`tools.creative.bench.Breaks`)."""

from __future__ import annotations

import json
import random

import pytest

from adapters.structured import GrammarCompiler
from adapters.testing import smollm2_tokenizer
from tools.creative.avoid import avoid_headlines
from tools.creative.bench import Breaks, bench_plans
from tools.creative.compose import (
    angles_of,
    body_tails,
    closers_for,
    headline_options,
    headlines,
)
from tools.creative.facts import MODEL_SENTENCES, CopyFacts
from tools.creative.products import benefits_for, names_benefit
from tools.creative.quality import headline_is_product_name, sentence_key
from tools.creative.review import review_copy
from tools.creative.write import CopyRequest, CopyResult, resolve
from tools.plan import CopyVariant
from tools.policy.compliance import AdCopy, brand_guide, required_disclaimers, retailer_policy


@pytest.fixture(scope="module")
def compiler() -> GrammarCompiler:
    return GrammarCompiler(smollm2_tokenizer())


def _salsa() -> CopyFacts:
    return CopyFacts(
        retailer_policy("alpha"), "instore_screen", "Acme Classic Salsa", "food",
        brand_guide("acme"),
    )  # fmt: skip


def _answer(headline: str, body: str) -> str:
    return json.dumps({"headline": headline, "body": body}, separators=(",", ":"))


def _bench_facts() -> list[CopyFacts]:
    out = []
    for plan in bench_plans(0, 1):
        for p in plan:
            request = CopyRequest(
                retailer_id=p.retailer_id, brand_id=p.brand_id, product_name=p.name,
                category=p.catalog_category, placement=p.placement,
            )  # fmt: skip
            out.append(resolve(request).facts)
    return out


def test_every_opening_passes_the_rules_and_names_the_products_benefit() -> None:
    seen = 0
    for facts in _bench_facts():
        openings = facts.openings()
        assert len(openings) == len(facts.angles())
        usable = [o for o in openings if o]
        assert usable, f"no opening for {facts.product} at {facts.policy.retailer_id}"
        assert len(set(usable)) == len(usable)  # variants on different angles never share one
        for opening in usable:
            body = f"{opening} every day."
            copy = AdCopy(
                headline="Today",
                body=body,
                disclaimers=required_disclaimers(
                    f"Today {body}", facts.policy, facts.placement, facts.category,
                    facts.guide,
                ),  # fmt: skip
            )
            problems = review_copy(
                copy, facts.policy, facts.placement, facts.category, facts.guide, facts.product
            )
            assert problems == [], (opening, problems)
            assert names_benefit(body, facts.product, facts.claims), opening
            seen += 1
    assert seen >= 20


def test_an_opening_that_breaks_a_rule_is_not_used() -> None:
    guide = brand_guide("acme")
    strict = guide.model_copy(update={"banned_words": [*guide.banned_words, "zesty"]})
    facts = CopyFacts(
        retailer_policy("alpha"), "instore_screen", "Acme Classic Salsa", "food", strict
    )
    assert "zesty" in facts.grammar.banned
    # The model could not write it either: the body opens on the two other benefits only.
    assert facts.openings() == ["Fresh tomato taste", "", "Made for chips"]


def test_a_banned_phrase_is_stopped_by_a_word_our_copy_does_not_use() -> None:
    """Bug: Alpha's "made in usa" was stopped by banning its longest word, "made", so the
    model could write neither Acme's "made for busy weeknights" nor the salsa's "made for
    chips" there, and wrote "madefor chips" (13 of 60 variants of `rmn bench language`)."""
    facts = _salsa()
    assert "made" not in facts.grammar.banned and "usa" in facts.grammar.banned
    assert facts.openings() == ["Fresh tomato taste", "A zesty kick", "Made for chips"]
    assert not facts.grammar.accepts("Made in USA", "Fresh tomato taste in every jar.")


def test_the_opening_grammar_in_python() -> None:
    grammar = _salsa().grammar.with_opening("Fresh tomato taste", MODEL_SENTENCES)
    assert grammar.accepts("Salsa night", "Fresh tomato taste in every jar.")
    assert not grammar.accepts("Salsa night", "Fresh tomato taste.")  # the bare phrase
    assert not grammar.accepts("Salsa night", "A zesty kick in every jar.")  # another opening
    assert not grammar.accepts("Salsa night", "Fresh tomato taste today. Grab a jar.")
    two = _salsa().grammar.with_opening("Fresh tomato taste", 2)
    assert two.accepts("Salsa night", "Fresh tomato taste today. Grab a jar.")
    assert not two.accepts("Salsa night", "Fresh tomato taste today. Grab a jar. Or two.")


def test_llguidance_forces_the_opening_and_agrees_with_python(compiler: GrammarCompiler) -> None:
    facts = _salsa()
    schema = facts.opening_schema("Fresh tomato taste")
    tokenizer = compiler._tokenizer
    matcher = compiler.matcher(schema)
    matcher.consume_tokens(matcher.compute_ff_tokens())
    matcher.consume_tokens(tokenizer.encode('Fresh taste"', add_special_tokens=False))
    forced = tokenizer.decode(matcher.compute_ff_tokens())
    assert forced == ',"body":"Fresh tomato taste'
    grammar = facts.grammar.with_opening("Fresh tomato taste", MODEL_SENTENCES)
    for body in ("Fresh tomato taste now in every jar.", "Fresh tomato taste.",
                 "A zesty kick for chips.", "Fresh tomato taste now. Grab a jar."):  # fmt: skip
        matcher = compiler.matcher(schema)
        ok = matcher.consume_tokens(
            tokenizer.encode(_answer("Fresh taste", body), add_special_tokens=False)
        )
        assert (ok and matcher.is_accepting()) == grammar.accepts("Fresh taste", body), body
        assert not matcher.get_error() or not ok


def test_random_walks_under_every_opening_grammar_never_stall(
    compiler: GrammarCompiler,
) -> None:
    """Random token walks through each bench product's opening grammars: the lexer never gives
    up ("too many expressions constructed" emptied 58 of 59 generations when the opening was
    written inside the BODY lexeme) and every allowed step keeps a next token."""
    import llguidance.torch

    tokenizer = compiler._tokenizer
    vocab = compiler.ll_tokenizer.vocab_size
    mask = llguidance.torch.allocate_token_bitmask(1, vocab)
    words = [tokenizer.encode(w, add_special_tokens=False)[0]
             for w in (" now", " in", " every", " jar", ",", " the", " for", " and")]  # fmt: skip
    rng = random.Random(0)
    for facts in _bench_facts()[:8]:
        for opening in facts.openings():
            matcher = compiler.matcher(facts.opening_schema(opening))
            for _ in range(60):
                ff = matcher.compute_ff_tokens()
                if ff:
                    assert matcher.consume_tokens(ff)
                if matcher.is_stopped():
                    break
                llguidance.torch.fill_next_token_bitmask(matcher, mask, 0)
                allowed = [t for t in words if (int(mask[0, t // 32]) >> (t % 32)) & 1]
                if not allowed:  # no common word fits (the body's length): any allowed token
                    bits = mask[0].tolist()
                    allowed = [w * 32 + b for w, x in enumerate(bits) for b in range(32)
                               if (x >> b) & 1 and w * 32 + b < vocab]  # fmt: skip
                assert allowed, matcher.get_error()
                assert matcher.consume_token(rng.choice(allowed))
            assert not matcher.get_error(), (facts.product, opening, matcher.get_error())


def _variant(path: str) -> CopyVariant:
    return CopyVariant(retailer_id="alpha", headline="H", body="B.", compliant=True, path=path)


def test_breaks_count_each_kind_per_generation_and_name_fallback_reasons() -> None:
    result = CopyResult(
        variants=[_variant("llm"), _variant("fixed"), _variant("fallback")],
        attempts=3,
        failures=[],
        rule_breaks=[
            [[]],
            [["body_too_long", "repetitive"]],
            [["invalid_json"], ["repetitive", "repetitive"], ["unapproved_claim:zero sugar"]],
        ],
    )
    breaks = Breaks()
    breaks.add(result)
    report = breaks.report()
    assert report["generations"] == 5 and report["clean_generations"] == 1
    assert report["by_kind"] == {
        "repetitive": 2, "body_too_long": 1, "invalid_json": 1, "unapproved_claim": 1,
    }  # fmt: skip
    assert report["by_group"] == {"repeats": 2, "length": 1, "json": 1, "claims": 1}
    assert report["first_generation"] == {
        "generations": 3, "clean": 1, "by_kind": {"body_too_long": 1, "repetitive": 1,
                                                  "invalid_json": 1},
    }  # fmt: skip
    assert report["fixed_by_rule"] == {"body_too_long": 1, "repetitive": 1}
    assert report["fallback_reasons"] == {
        "invalid_json": 1, "repetitive": 1, "unapproved_claim": 1,
    }  # fmt: skip


def test_no_headline_ends_on_a_dangling_word(compiler: GrammarCompiler) -> None:
    """Bug: cut at the headline's limit, the model's copy read "No artificial colors or" and
    "A daily probiotic, from a", and with those refused "from G"; the grammar now lets no
    headline end on such a word or a single letter, in llguidance as in Python."""
    facts = _salsa()
    schema = facts.opening_schema("Fresh tomato taste")
    grammar = facts.grammar.with_opening("Fresh tomato taste", MODEL_SENTENCES)
    tokenizer = compiler._tokenizer
    body = "Fresh tomato taste in every jar."
    for headline, ok in (("No artificial colors or", False), ("Salsa for the", False),
                         ("Salsa night, from G", False), ("Salsa, part of a d", False),
                         ("Salsa, part of a'a", False), ("Salsa for the's", False),
                         ("Care you can count on", True), ("Salsa night", True)):  # fmt: skip
        matcher = compiler.matcher(schema)
        consumed = matcher.consume_tokens(
            tokenizer.encode(_answer(headline, body), add_special_tokens=False)
        )
        assert (consumed and matcher.is_accepting()) == ok, headline
        assert grammar.accepts(headline, body) == ok, headline


def test_a_reasks_grammar_cannot_write_what_its_refused_copy_wrote(
    compiler: GrammarCompiler,
) -> None:
    """Bug: asked again, the model wrote the refused copy again ("Cuckies the way of the
    family" three times; with "cuckies" banned as a word, "Cuckiesthe"). A re-ask's grammar
    bans every word starting with a refused word and the refused headline, and no grammar
    writes a lone lower-case letter ("A daily probiotic, part of a i"); llguidance and Python
    agree."""
    from tools.creative.avoid import avoid_after, avoid_headlines

    facts = _salsa()
    refused = AdCopy(headline="Cuckies the way of it", body="Fresh tomato taste, all.")
    avoid = avoid_after(refused, ["unknown_word:Cuckies"]) | avoid_headlines(
        AdCopy(headline="Salsa night, every night", body="x")
    )
    assert avoid.words == {"cuckies"} and avoid.headlines == {"salsa night every night"}
    plain = facts.opening_schema("Fresh tomato taste")
    again = facts.opening_schema("Fresh tomato taste", avoid.words, avoid.headlines)
    grammar = facts.grammar.with_opening("Fresh tomato taste", MODEL_SENTENCES).avoiding(
        avoid.words, avoid.headlines
    )
    tokenizer = compiler._tokenizer
    body = "Fresh tomato taste in every jar."
    for headline, first_ok, again_ok in (
        ("Cuckies the way of it", True, False),
        ("Cuckiesthe way of it", True, False),
        ("Salsa night, every night", True, False),
        ("Salsa Night - every night", True, False),
        ("Salsa night, every day", True, True),
        ("A salsa, part of a i", False, False),
        ("Salsa for all of us", True, True),
    ):
        for schema, ok in ((plain, first_ok), (again, again_ok)):
            matcher = compiler.matcher(schema)
            consumed = matcher.consume_tokens(
                tokenizer.encode(_answer(headline, body), add_special_tokens=False)
            )
            assert (consumed and matcher.is_accepting()) == ok, (headline, ok)
        assert grammar.accepts(headline, body) == again_ok, headline


def test_what_a_reask_avoids_follows_the_broken_rule() -> None:
    from tools.creative.avoid import avoid_after

    cut = AdCopy(headline="All the Containers", body="Strong, stretchy bags, fits most can.")
    assert avoid_after(cut, ["cut_phrase:fits most cans"]).words == {"can"}
    loop = AdCopy(headline="A daily probiotic, daily", body="A daily probiotic, a capsule.")
    assert avoid_after(loop, ["repetitive"]).words == {"daily", "probiotic"}
    assert avoid_after(loop, ["prohibited:miracle"]).words == set()  # the grammar bans those


def test_the_model_chooses_its_headline_among_the_products_own(
    compiler: GrammarCompiler,
) -> None:
    """The model's headline is one the copy templates make for the product (around its angles,
    or a brand hook that suits it), which llguidance and Python agree on: its own headlines
    were the main reason a reviewer rated copy unfit ("Bus a Day", "Socks of care")."""
    seen = 0
    for facts in _bench_facts():
        opening = next(o for o in facts.openings() if o)
        heads = headline_options(facts, angles_of(facts)[0], opening)
        assert heads, facts.product
        body = f"{opening} every day."
        for head in heads:
            assert not headline_is_product_name(head, facts.product)
            copy = AdCopy(headline=head, body=body, disclaimers=required_disclaimers(
                f"{head} {body}", facts.policy, facts.placement, facts.category, facts.guide))
            assert review_copy(copy, facts.policy, facts.placement, facts.category, facts.guide,
                               facts.product) == [], head  # fmt: skip
            seen += 1
    assert seen >= 40
    facts = _salsa()
    heads = headline_options(facts, angles_of(facts)[0], "A zesty kick")
    grammar = facts.grammar.with_opening("A zesty kick", MODEL_SENTENCES).choosing(heads)
    schema = facts.opening_schema("A zesty kick", headlines=heads)
    body = "A zesty kick for game night."
    for head in (heads[0], heads[-1], "Salsa night", heads[0] + " now"):
        matcher = compiler.matcher(schema)
        ok = matcher.consume_tokens(compiler._tokenizer.encode(
            _answer(head, body), add_special_tokens=False))  # fmt: skip
        assert (ok and matcher.is_accepting()) == grammar.accepts(head, body) == (head in heads)
    # A headline a re-ask must avoid is no longer offered; with every one avoided, the model
    # writes its own words again.
    avoiding = grammar.avoiding(frozenset(), frozenset({sentence_key(heads[0])}))
    assert heads[0] not in avoiding.head_options() and heads[1] in avoiding.head_options()
    everything = grammar.avoiding(frozenset(), frozenset(sentence_key(h) for h in heads))
    assert everything.head_options() == () and everything.accepts("Salsa night", body)


def test_a_brand_hook_about_food_heads_no_copy_for_what_nobody_eats() -> None:
    """brand_x's hooks "bold flavor, zero fuss" and "big taste, good vibes" headed its
    shampoo ("Fresh taste, every time", rated wrong for the product), and acme's "snack time"
    lines its trash bags."""
    def facts(brand: str, product: str, category: str) -> CopyFacts:
        return CopyFacts(
            retailer_policy("alpha"), "instore_screen", product, category, brand_guide(brand)
        )

    shampoo = facts("brand_x", "Brand Coconut Shampoo", "personal_care")
    tea = facts("brand_x", "Brand Peach Iced Tea", "beverages")
    bags = facts("acme", "Acme Lemon Trash Bags", "household")
    hooks = {h.lower() for h in headlines(tea, None)}
    assert {"big taste, good vibes", "bold flavor, zero fuss"} <= hooks
    assert not {h.lower() for h in headlines(shampoo, None)} & {
        "big taste, good vibes", "bold flavor, zero fuss"}  # fmt: skip
    assert "Made for every crew" in headlines(shampoo, None)
    assert not any("snack" in h.lower() for h in headlines(bags, None))
    assert not any("snack" in c.lower() for c in closers_for(bags))



def test_a_brand_hook_about_getting_a_job_done_heads_no_copy_for_decor() -> None:
    """initech's "A simpler way to get it done" and "Practical design, precise results" headed
    ads for candles and throw pillows (rated wrong for the product, seeds 808/809), and "Set
    it up in minutes." closed them; on a coffee maker they stay."""
    def facts(product: str, category: str) -> CopyFacts:
        return CopyFacts(retailer_policy("alpha"), "sponsored_product", product, category,
                         brand_guide("initech"))  # fmt: skip

    candle = facts("Initech Coastal Scented Candle", "home_goods")
    maker = facts("Initech Classic Coffee Maker", "small_electronics")
    task = {"a simpler way to get it done", "practical design, precise results"}
    assert task <= {h.lower() for h in headlines(maker, None)}
    assert not task & {h.lower() for h in headlines(candle, None)}
    assert "Built for everyday use" in headlines(candle, None)
    assert "Set it up in minutes." in closers_for(maker)
    assert not any("set it up" in c.lower() or "specs" in c.lower() for c in closers_for(candle))
    # Kitchen goods share the policy category with decor ("home_goods") and keep the lines;
    # so does the brand's range (a brand-level ad names no product).
    sheet = facts("Initech Bamboo Baking Sheet", "home_goods")
    assert task <= {h.lower() for h in headlines(sheet, None)}
    assert task <= {h.lower() for h in headlines(facts("Initech Home", "home_goods"), None)}


def test_the_model_chooses_how_its_body_ends_among_the_products_own_phrases(
    compiler: GrammarCompiler,
) -> None:
    """After the opening the body ends on one of the product's phrases (`body_tails`), which
    llguidance and Python agree on: the model's own ends were what a reviewer still rated bad
    once the headline was chosen ("Fits most cans, make a family member's cup.")."""
    for facts in _bench_facts():
        opening = next(o for o in facts.openings() if o)
        tails = body_tails(facts, opening)
        assert ", every time." in tails or len(opening) + 13 > facts.limits[1], facts.product
        for tail in tails:
            body = opening + tail
            copy = AdCopy(headline="Today", body=body, disclaimers=required_disclaimers(
                f"Today {body}", facts.policy, facts.placement, facts.category, facts.guide))
            assert review_copy(copy, facts.policy, facts.placement, facts.category, facts.guide,
                               facts.product) == [], body  # fmt: skip
    facts = _salsa()
    tails = body_tails(facts, "A zesty kick")
    assert ", made for chips." in tails and ", a zesty kick." not in tails
    grammar = facts.grammar.with_opening("A zesty kick", MODEL_SENTENCES).choosing((), tails)
    schema = facts.opening_schema("A zesty kick", tails=tails)
    bodies = ("A zesty kick, made for chips.", "A zesty kick, every time.",
              "A zesty kick for game night.", "A zesty kick, made for chips. Grab it.")
    for body in bodies:
        matcher = compiler.matcher(schema)
        ok = matcher.consume_tokens(compiler._tokenizer.encode(
            _answer("Salsa night", body), add_special_tokens=False))  # fmt: skip
        expected = body in ("A zesty kick, made for chips.", "A zesty kick, every time.")
        assert (ok and matcher.is_accepting()) == grammar.accepts("Salsa night", body) == expected
    # A word a re-ask must avoid takes its ends out; with none left, the model's own words.
    avoiding = grammar.avoiding(frozenset({"chips"}), frozenset())
    assert ", made for chips." not in avoiding.tail_options() and avoiding.tail_options()
    assert body_tails(facts, "") == ()


def test_a_reask_after_a_repeat_cannot_end_its_body_as_another_variant_did() -> None:
    """With the body's end chosen, two variants on one opening chose the same end, and the
    re-ask chose it again: 27 of 85 generations repeated another variant and 9 of 60 variants
    went to templates (`rmn bench language` seed 0)."""
    ctx = resolve(CopyRequest(retailer_id="alpha", brand_id="acme",
                              product_name="Acme Classic Salsa"))  # fmt: skip
    opening = next(o for o in ctx.facts.openings() if o)
    other = AdCopy(headline="Family favorite", body=f"{opening}, every time.")
    avoid = avoid_headlines(other)
    assert sentence_key(f"{opening}, every time.") in avoid.sentences
    index = ctx.facts.openings().index(opening) - 1 - ctx.angle_offset
    lark = ctx.schema(index, avoid).lark_text
    assert json.dumps(", every time.") not in lark and json.dumps(", every day.") in lark
    assert json.dumps(", every time.") in ctx.schema(index).lark_text


def test_a_benefit_naming_another_dose_form_is_not_the_products() -> None:
    """"A capsule a day" on a chewable or gummy probiotic, "Small, smooth tablets" on gel caps:
    the copy a blind reviewer still rated wrong for the product (seed 810)."""
    assert "a capsule a day" in benefits_for("Globex Probiotic")
    for product in ("Globex Chewable Probiotic", "Globex Gummies Probiotic"):
        assert benefits_for(product) == ["a daily probiotic", "part of a daily routine"]
    assert benefits_for("Globex Gel Caps Pain Reliever") == ["relief for everyday aches"]
    assert "chewable tablets" in benefits_for("Globex Chewable Vitamin C")
    assert "chewable tablets" not in benefits_for("Globex Gummies Vitamin C")
    assert "small softgels" in benefits_for("Globex Softgels Vitamin D3")
