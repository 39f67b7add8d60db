"""Which words of a model-written sentence are not English: the check that keeps glued or
invented tokens ("theollsund", "ofresponsecurve", "anderionerion") out of what an approver
reads.

    unknown_words("The plan is not immune to bias.", known=("Beta",))   # -> []

The grammar (`adapters.structured.SentenceGrammar`) admits any run of letters as a word, and
SmolLM2-135M, seeded and greedy, writes such runs: on four reflection test plans (the plan of
`tests/integration/test_real_model.py`, with and without caps and memory) every answer held at
least one ("theollsund", "anderionerion"). A word passes when it is in the English word lists
bundled with `english-words` (web2 and GCIDE, 263k lower-case words, loaded once, ~0.2 s), when
a regular ending taken off leaves such a word ("retailers", "planned", "shifting"), or when it
is one of `known` (names and words of the facts and passages the model was shown).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from tools.english import english

_WORD = re.compile(r"[A-Za-z]+(?:'[A-Za-z]+)?")
# Regular English endings, longest first; "ies" -> "y" is handled on its own.
_ENDINGS = ("ing", "ed", "es", "ly", "er", "est", "s", "d")
# Retail-media words the general lists lack.
DOMAIN = frozenset(
    [
        "ad",
        "ads",
        "roas",
        "iroas",
        "cpc",
        "cpm",
        "ctr",
        "cvr",
        "sku",
        "gtin",
        "upc",
        "geo",
        "holdout",
        "switchback",
        "offsite",
        "onsite",
        "ecommerce",
        "omnichannel",
        "app",
        "dp",
        "k-anonymity",
    ]
)


# DOMAIN's words a grammar lexicon can hold (letters only).
DOMAIN_WORDS = frozenset(w for w in DOMAIN if w.isalpha())


def is_word(word: str, known: frozenset[str] = frozenset()) -> bool:
    """Whether `word` (letters, maybe with an apostrophe) is English or one of `known`."""
    low = word.lower()
    if low in known or low in DOMAIN:
        return True
    if "'" in low:
        low = low.split("'", 1)[0]
    words = english()
    if low in words:
        return True
    if low.endswith("ies") and low[:-3] + "y" in words:
        return True
    stems = [low[: -len(e)] for e in _ENDINGS if low.endswith(e) and len(low) - len(e) >= 2]
    # "planned" -> "plan", "making" -> "make"
    stems += [t[:-1] for t in stems if len(t) > 2 and t[-1] == t[-2]] + [t + "e" for t in stems]
    return any(stem in words or stem in DOMAIN for stem in stems)


# The words a model-written sentence may use besides those of what it was shown (the facts,
# the passages, the code's openings and the template's own sentences: `words_of`): function
# words and the plain verbs, adjectives and nouns of an explanation. A grammar holding these
# (`SentenceGrammar.lexicon`) keeps the model on the plan: with any English word allowed,
# SmolLM2-135M explained a split "because of the rules, and the next icing is on the cake".
_GENERAL = """
    a about above across after again against all also although always an and another any
    are around as at away back be because been before being below best better between both
    but by can cannot could did do does down during each early either else enough even
    every few first for from full further had has have here high higher how if in instead
    into is it its itself just keep keeps kept last late later least less like likely long
    low lower main many may might more most much must near need needs new next no none nor
    not now of off often on once one only or other others our out over own part per plan
    plans point rather real really same second set should show shows since so some still
    such than that the their them then there these they this those through thus to too
    toward under until up upon us very was way we well were what when where whether which
    while who why will with within without would yet
    add adds added buy buys change changes check checks come comes cost costs cut
    cuts did drive drives earn earns expect expects fall falls fill fills find
    finds fit fits follow follows get gets give gives go goes grow grows hold holds help
    helps hit hits know lead leads leave leaves let lets limit limits lose loses make makes
    meet meets mean means miss misses move moves pay pays place places prove proves push
    pushes put puts reach reaches read reads return returns rise rises run runs say says
    see sees sell sells shift shifts spend spends stay stays stop stops take takes tell
    tells test tests use uses wait work works
    able clear clean close common current different direct easy extra fair fewer good
    great hard large larger largest little good narrow needed open possible right safe
    short small smaller strong sure true weak whole wide wrong
    amount budget buyers case cap caps customers data dollar dollars effect growth impact
    level lift limit money month months noise order price range rate reason result
    results room rule rules sales share shoppers signal size slack space split spending
    store stores sum time value week weeks year
"""
GENERAL_WORDS = frozenset(_GENERAL.split()) | DOMAIN_WORDS


def words_of(texts: Iterable[str]) -> frozenset[str]:
    """The words of `texts` (facts, passages, openings, the template), as written: a
    grammar's `known_words`, beside `GENERAL_WORDS`."""
    return frozenset(w for text in texts for w in _WORD.findall(text))


def unknown_words(text: str, known: Iterable[str] = ()) -> list[str]:
    """The words of `text` that are neither English nor in `known`, in order, once each."""
    allowed = frozenset(w.lower() for w in words_of(known))
    bad = [w for w in _WORD.findall(text) if not is_word(w, allowed)]
    return list(dict.fromkeys(bad))


def stutters(text: str) -> bool:
    """Whether one word (letters) is written twice in a row ("urn urn", "like a this this";
    not "4.4"). It was three in a row until the rationale's worked example: with it, the
    garbled endings SmolLM2-135M still wrote on held-out plans doubled a word ("would look like
    a in on the this this, but it only") and passed. A phrase of up to four words written
    twice in a row is one too: "so a smaller lift would read as a leads to a leads to a
    leads" passed and reached a reviewer (qa of unseen36)."""
    return _STUTTER.search(text) is not None


# A word twice (across a comma too), or a phrase of two to four words twice with only spaces
# between ("the plan, the plan" is a list, not a stutter).
_STUTTER = re.compile(
    r"\b([A-Za-z]+)[\s,]+\1\b|\b([A-Za-z]+(?:\s+[A-Za-z]+){1,3})\s+\2\b", flags=re.IGNORECASE
)


def clashes(text: str) -> bool:
    """Whether two limits on one amount stand back to back ("lets one brand spend at most at
    least one more dollar per month": a rationale ending SmolLM2-135M wrote that passed every
    other check and reached a reviewer, ta59 of the round 5 finding set)."""
    return _CLASH.search(text) is not None


def dangles(text: str) -> bool:
    """Whether an article stands before no noun ("because of the high margin, low end of the
    in the policy": a split ending SmolLM2-135M wrote that passed every other check and
    reached a reviewer, va37 of unseen41; no other of the 156 model texts of round 6 has one)."""
    return _DANGLING.search(text) is not None


_DANGLING = re.compile(
    r"\b(?:the|a|an)\s+(?:in|of|on|at|to|for|and|or|but|the|a|an|with|by|from|is|are|was)\b",
    flags=re.IGNORECASE,
)
_LIMIT = r"(?:at (?:most|least)|no (?:more|less|fewer) than)"
_CLASH = re.compile(rf"\b{_LIMIT}\s+{_LIMIT}\b", flags=re.IGNORECASE)


_NAME = re.compile(r"\b[A-Z][a-z]+(?: [A-Z][a-z]+)+\b")


def name_joins(texts: Iterable[str]) -> frozenset[str]:
    """For each name of two or more capitalized words in `texts` ("Beta Grocers"), each word
    joined to the first letter of the next ("betag"), lower-case: a grammar's banned word
    starts (`SentenceGrammar.banned_prefixes`), so that the model writes the name as shown.

    Why: SmolLM2-135M glued names it was shown: in `rmn bench e2e` (5 briefs) 3 of the 10
    rationale texts wrote "BetaGrocers'" or "AlphaMarts", which the English check refused, so
    the template wrote them. Banning the glued names alone did not help: it wrote
    "BetaGrocerssrede" and "AlphaMartshipshf" instead."""
    out: set[str] = set()
    for text in texts:
        for m in _NAME.finditer(text):
            words = m.group(0).lower().split(" ")
            out |= {a + b[0] for a, b in zip(words, words[1:], strict=False)}
    return frozenset(out)
