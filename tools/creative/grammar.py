"""The decode grammar of a copy request: the retailer's and brand's rules written into the
grammar the model decodes under (llguidance, Lark syntax), so that the model cannot write what
the rules forbid, rather than being corrected afterwards.

The answer is `{"headline":"...","body":"..."}` with:
- length: the placement's headline and body limits, exactly;
- characters: ASCII letters, plain punctuation, digits only inside the tokens below; no emoji,
  markup, braces or quotes;
- exclamation marks: none in the headline, at most the retailer's limit in the body;
- endings: no headline ends on a word like "or" or "the" (`DANGLING_WORDS`) or a single
  letter but "I": cut at the limit, the model's headlines read "No artificial colors or",
  then, with those refused, "A daily probiotic, part of a d" and "from G". (Allowing only
  the ~870 words of our copy, the product and `GENERAL_WORDS` at the end stopped those too,
  but llguidance's lexer gave up on it: "too many expressions constructed".);
- case: the headline starts with a capital; title case capitalizes every word but the small
  ones, sentence case keeps later words lower case (brand-name words and allowed acronyms
  excepted); no word in capitals but an allowed acronym; every body sentence starts with a
  capital and ends with ".", "?" or "!";
- words: no banned word, as a word or a hyphen part (any case): the brand's banned words and
  forbidden claims, the retailer's prohibited terms and claim phrases, its banned price
  phrases (their most distinctive word, `_distinctive_words`), and the words that make a
  claim needing substantiation (`CLAIM_WORDS`), except those the product's name or approved
  claims use;
- numbers: only the tokens with digits (or capitals, '&', '+') that the product name or its
  approved claims carry ("50", "99.9%", "48-hour", "D3"), written as they are.
- choice (the writer's grammar, `choosing`): the headline is one of the product's own
  headlines and the body's end, after its forced opening, one of its own phrases
  (`tools.creative.compose.headline_options`, `body_tails`): the model's own headlines and
  endings were what a blind reviewer rated unfit to run ("Bus a Day", "Adds color to a sofa,
  a can."); with none left to choose (a re-ask's), the rules above apply to its own words.

What the grammar cannot say (a repeated sentence, a phrase whose words are each fine) the
checker still catches (`review_copy`), and the writer's regeneration, fix and fallback stay
real and counted.

`CopySchema` hands the grammar to the runtime as an `adapters.structured.OutputSchema` whose
grammar is this Lark text (the answer is validated as JSON against `json_schema`).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace
from typing import Any

from adapters.structured import OutputSchema
from tools.creative.words import DANGLING_WORDS, copy_words
from tools.policy import BrandGuide, Capitalization, RetailerPolicy
from tools.policy.compliance import TITLE_SMALL_WORDS

# Words that make copy a claim needing substantiation (`tools.policy.claims.GENERIC_CLAIMS`),
# as words or hyphen parts. Banned unless the product's name or approved claims use them
# ("Fragrance-Free", "Zero sugar").
CLAIM_WORDS: tuple[str, ...] = (
    "free", "zero", "natural", "organic", "vegan", "healthy", "healthier", "nutritious",
    "proven", "certified", "guarantee", "guaranteed", "warranty", "boost", "boosts",
    "cure", "cures", "heal", "heals", "healing", "prevent", "prevents", "detox", "immune",
    "immunity", "hypoallergenic", "waterproof", "recyclable", "sustainable", "biodegradable",
    "compostable", "eco", "toxic", "antibacterial", "antimicrobial", "disinfect", "disinfects",
    "disinfecting", "sanitize", "sanitizes", "purify", "purifies", "clinically", "clinical",
    "dermatologist", "lab", "scientifically", "best",
    "bestselling", "rated", "award", "winning", "hydrating", "energizing", "drowsy",
    "spectrum", "spf", "germs", "bacteria", "viruses", "bpa", "dishwasher", "microwave",
    "unbreakable", "indestructible", "fireproof", "shatterproof", "childproof", "lasting",
    "protection", "charges", "charging", "sugar", "calorie", "calories", "fat", "sodium",
    "gluten", "paraben", "parabens", "sulfate", "sulfates", "aluminum", "cruelty", "gmo",
    "protein", "fiber", "percent", "times", "number",
)  # fmt: skip

MAX_WORD = 18  # letters in one word part: longer is a loop or a pasted identifier
# A lower-case word part: "a" is the one single letter. The model's headlines ran into their
# limit as "A daily probiotic, part of a i" (3 of 60 variants of `rmn bench language` seed 0).
_LOWER = rf"(?:a|[a-z]{{2,{MAX_WORD}}})"
# What the prompt's schema line shows: the shape and limits (the grammar enforces the rest).
PROMPT_SCHEMA_KEYS = ("headline", "body")


def prompt_schema(max_headline: int, max_body: int) -> dict[str, Any]:
    """The JSON schema the copy prompt shows and the answer is validated against."""
    return {
        "type": "object",
        "properties": {
            "headline": {"type": "string", "minLength": 1, "maxLength": max_headline},
            "body": {"type": "string", "minLength": 1, "maxLength": max_body},
        },
        "required": list(PROMPT_SCHEMA_KEYS),
    }


@dataclass(frozen=True)
class CopyGrammar:
    """The words and tokens one copy request may use (see the module docstring)."""

    banned: frozenset[str]
    literals: tuple[str, ...]  # tokens with digits, capitals, '&' or '+', written as given
    keep_caps: tuple[str, ...]  # capitalized words a sentence-case headline may carry
    capitalization: Capitalization
    max_exclamation_marks: int
    max_headline: int
    max_body: int
    # The model's grammar only (`with_opening`); template copy is checked without them.
    opening: str = ""  # forced start of the body: a benefit or approved claim, as written
    max_sentences: int = 0  # body sentences at most; 0: any number
    # A re-ask's grammar only (`avoiding`): words no word may start with (the model, its
    # refused "Cuckies" banned, wrote "Cuckiesthe"), and headlines, as sentence keys.
    avoid_words: frozenset[str] = frozenset()
    avoid_headlines: frozenset[str] = frozenset()
    # The model's grammar only (`choosing`): the headlines it may choose among, as written,
    # and the ends of the body after its opening.
    headlines: tuple[str, ...] = ()
    tails: tuple[str, ...] = ()

    def with_opening(self, opening: str, max_sentences: int) -> CopyGrammar:
        """This grammar with the body forced to open on `opening` (which the model continues
        by at least one word, so the first sentence is never the bare phrase) and to hold at
        most `max_sentences` sentences."""
        return replace(self, opening=opening, max_sentences=max_sentences)

    def avoiding(self, words: frozenset[str], headlines: frozenset[str]) -> CopyGrammar:
        """This grammar with no word starting with one of `words` and none of `headlines`
        (sentence keys) as the headline: a re-ask's, so that it cannot write again what its
        refused copy wrote."""
        words = frozenset(w for w in words if re.fullmatch(r"[a-z]+", w))
        if not words and not headlines:
            return self
        return replace(self, avoid_words=self.avoid_words | words,
                       avoid_headlines=self.avoid_headlines | headlines)  # fmt: skip

    def choosing(self, headlines: tuple[str, ...], tails: tuple[str, ...] = ()) -> CopyGrammar:
        """This grammar with the headline one of `headlines` and, after the opening, the body
        one of `tails` (those it avoids left out; with none left, the model's own words
        again)."""
        return replace(self, headlines=headlines, tails=tails)

    def tail_options(self) -> tuple[str, ...]:
        """The ends of the body after its opening this grammar lets the model choose among; ()
        when it writes its own (or there is no opening)."""
        if not self.opening:
            return ()
        avoided = tuple(self.avoid_words)
        return tuple(
            t for t in self.tails
            if not any(w.lower().startswith(avoided) for w in re.findall(r"[A-Za-z]+", t))
        )  # fmt: skip

    def head_options(self) -> tuple[str, ...]:
        """The headlines this grammar lets the model choose among; () when it writes its own."""
        if not self.avoid_headlines:
            return self.headlines
        avoided = re.compile(self._avoided(), re.I)
        return tuple(h for h in self.headlines if not avoided.fullmatch(h))

    def lark(self) -> str:
        """The grammar in llguidance's Lark dialect."""
        # A forced opening is a literal of its own before the BODY lexeme, not part of it:
        # inside the lexeme, llguidance's lazy lexer gave up a few words on ("lexer error: too
        # many expressions constructed", 58 of 59 bench generations came back empty).
        opening = f" {json.dumps(self.opening)}" if self.opening else ""
        lines = [
            rf'start: "{{\"headline\":\"" HEAD "\",\"body\":\""{opening} BODY "\"}}"',
            f"LOWER: /[a-z]{{1,{MAX_WORD}}}/ & ~/[b-z]/{self._not_banned()}",
            f"UPPER: /[A-Z][a-z]{{0,{MAX_WORD - 1}}}/{self._not_banned()}",
            'TAIL: ("\'" /[a-z]{1,2}/)? ("-" LOWER)?',
            "CAPWORD: UPPER TAIL",
            "LOWWORD: LOWER TAIL",
            'SEP: " " | ", " | " - " | "; "',
        ]
        literals = sorted(set(self.literals), key=lambda t: (-len(t), t))
        lit = " | LIT" if literals else ""
        if literals:
            lines.append("LIT: " + " | ".join(json.dumps(t) for t in literals))
        lines.append(f"WORD: CAPWORD | LOWWORD{lit}")
        first = f"(CAPWORD{lit})"
        if self.capitalization == Capitalization.TITLE_CASE:
            small = " | ".join(json.dumps(w) for w in sorted(TITLE_SMALL_WORDS))
            later = f"(CAPWORD{lit} | {small})"
        elif self.capitalization == Capitalization.SENTENCE_CASE:
            keep = " | ".join(json.dumps(w) for w in sorted(set(self.keep_caps)))
            later = f"(LOWWORD | {keep})" if keep else "LOWWORD"
        else:
            later = "WORD"
        options = self.head_options()
        head = (
            " | ".join(json.dumps(h) for h in options)
            if options
            else f"({first} (SEP {later})*) & /[^!]{{1,{self.max_headline}}}/ & {self._ending()}"
            f"{self._not_avoided()}"
        )
        lines += [
            f"HEAD: {head}",
            f"SENTENCE: {first} (SEP WORD)* /[.?!]/",
        ]
        if tails := self.tail_options():
            lines.append("BODY: " + " | ".join(json.dumps(t) for t in tails))
            return "\n".join(lines) + "\n"
        # The rest of the opening sentence: at least one more word, so it is never the bare
        # phrase (a headline of another variant may be that phrase).
        first_sentence = "(SEP WORD)+ /[.?!]/" if self.opening else "SENTENCE"
        if self.max_sentences:
            more = ""
            for _ in range(self.max_sentences - 1):  # nested optionals: no {m,n} on terminals
                more = f'(" " SENTENCE{more})?'
        else:
            more = '(" " SENTENCE)*'
        lines.append(
            f"BODY: ({first_sentence} {more}) & /.{{1,{self.max_body - len(self.opening)}}}/"
            f" & /[^!]*(![^!]*){{0,{self.max_exclamation_marks}}}/"
        )
        return "\n".join(lines) + "\n"

    def accepts(self, headline: str, body: str) -> bool:
        """Whether the grammar lets the model write this copy: the same rules in Python's `re`
        (tests check the two agree through llguidance), for reference and template copy."""
        if not 1 <= len(headline) <= self.max_headline or "!" in headline:
            return False
        if self.head_options() and headline not in self.head_options():
            return False
        if (tails := self.tail_options()) and body not in {self.opening + t for t in tails}:
            return False
        if not 1 <= len(body) <= self.max_body or body.count("!") > self.max_exclamation_marks:
            return False
        first, later = self._python_words()
        sep = r"(?: |, | - |; )"
        head = re.fullmatch(rf"(?:{first})(?:{sep}(?:{later}))*", headline)
        last = re.search(r"(?:^|[ ,;-])([^ ,;-]+)$", headline)
        word = last.group(1).lower().split("'")[0] if last else ""
        if word in DANGLING_WORDS or re.fullmatch(r"[b-hj-z]", word):
            return False
        sentence = rf"(?:{first})(?:{sep}(?:{self._python_any()}))*[.?!]"
        opening = sentence
        if self.opening:
            opening = rf"{re.escape(self.opening)}(?:{sep}(?:{self._python_any()}))+[.?!]"
        more = "*" if not self.max_sentences else f"{{0,{self.max_sentences - 1}}}"
        said = re.fullmatch(rf"{opening}(?: {sentence}){more}", body)
        if head is None or said is None:
            return False
        if self._not_avoided() and re.fullmatch(self._avoided(), headline, re.I):
            return False
        parts = re.findall(r"[A-Za-z]+", f"{headline} {body}")
        literal_words = {w for t in self.literals for w in re.findall(r"[A-Za-z]+", t)}
        return not any(
            (p.lower() in self.banned or p.lower().startswith(tuple(self.avoid_words)))
            and p not in literal_words
            for p in parts
        )

    def _ending(self) -> str:
        """No headline ends on a dangling word or a single letter but "I"."""
        # With an apostrophe tail too: refused "part of a", the model wrote "part of a'a".
        return f"~/(?i:(.*[ ,;-])?({'|'.join(DANGLING_WORDS)}|[b-hj-z])('[a-z]{{1,2}})?)/"

    def _not_avoided(self) -> str:
        return f" & ~/(?i:{self._avoided()})/" if self.avoid_headlines else ""

    def _avoided(self) -> str:
        """The avoided headlines, any punctuation between their words ("fresh taste no fuss"
        is "Fresh taste, no fuss" too)."""
        return "|".join(
            r"[^A-Za-z0-9]*".join(re.escape(w) for w in key.split()) + r"[^A-Za-z0-9]*"
            for key in sorted(self.avoid_headlines)
        )

    def _python_any(self) -> str:
        tail = rf"(?:'[a-z]{{1,2}})?(?:-{_LOWER})?"
        word = rf"(?:[A-Z][a-z]{{0,{MAX_WORD - 1}}}|{_LOWER}){tail}"
        lits = "|".join(re.escape(t) for t in sorted(set(self.literals), key=lambda t: -len(t)))
        return f"{lits}|{word}" if lits else word

    def _python_words(self) -> tuple[str, str]:
        tail = rf"(?:'[a-z]{{1,2}})?(?:-{_LOWER})?"
        upper = rf"[A-Z][a-z]{{0,{MAX_WORD - 1}}}{tail}"
        lower = rf"{_LOWER}{tail}"
        lits = "|".join(re.escape(t) for t in sorted(set(self.literals), key=lambda t: -len(t)))
        first = f"{lits}|{upper}" if lits else upper
        if self.capitalization == Capitalization.TITLE_CASE:
            later = f"{first}|" + "|".join(sorted(TITLE_SMALL_WORDS))
        elif self.capitalization == Capitalization.SENTENCE_CASE:
            keep = "|".join(re.escape(w) for w in sorted(set(self.keep_caps)))
            later = f"{lower}|{keep}" if keep else lower
        else:
            later = self._python_any()
        return first, later

    def _not_banned(self) -> str:
        words = sorted(w for w in self.banned if re.fullmatch(r"[a-z]+", w))
        out = f" & ~/(?i:{'|'.join(words)})/" if words else ""
        if self.avoid_words:
            out += f" & ~/(?i:({'|'.join(sorted(self.avoid_words))})[a-z]*)/"
        return out


@dataclass(frozen=True)
class CopySchema(OutputSchema):
    """An `OutputSchema` decoded under a copy grammar's Lark text; the answer is validated as
    JSON against `json_schema` (`prompt_schema`)."""

    lark_text: str = ""

    def grammar(self) -> str:
        from llguidance import LLMatcher

        return LLMatcher.grammar_from_lark(self.lark_text)

    @classmethod
    def of_grammar(cls, grammar: CopyGrammar) -> CopySchema:
        text = grammar.lark()
        schema = prompt_schema(grammar.max_headline, grammar.max_body)
        return cls(schema, None, "lark:" + text, None, text)


def copy_grammar(
    policy: RetailerPolicy,
    placement: str,
    category: str | None,
    guide: BrandGuide | None,
    product: str,
    approved_claims: list[str],
) -> CopyGrammar:
    """The grammar for copy of `product` at this retailer and placement (`category`: a policy
    category; `approved_claims`: the claims approved for the product that may run here)."""
    limits = policy.creative.limits(placement)
    allowed_text = " ".join([product, *approved_claims])
    allowed_words = {w.lower() for w in re.findall(r"[A-Za-z]+", allowed_text)}
    phrases = [*policy.prohibited.prohibited_terms, *policy.creative.price_claims.banned_phrases]
    for rule in policy.prohibited.prohibited_claims:
        if category is None or not rule.categories or category in rule.categories:
            phrases += list(rule.phrases)
    if guide is not None:
        phrases += [*guide.banned_words, *guide.forbidden_claims]
    banned = {w for p in phrases for w in _distinctive_words(p)} | set(CLAIM_WORDS)
    banned -= allowed_words
    acronyms = [a for a in policy.creative.allowed_acronyms if a.isalpha()]
    literals = [t for t in _tokens(allowed_text) if _is_literal(t, policy)] + acronyms
    keep = [w for w in (guide.name.split()[:1] if guide else []) if w.isalpha()] + acronyms
    keep += [t for t in literals if not t.isalpha()]
    return CopyGrammar(
        banned=frozenset(banned),
        literals=tuple(dict.fromkeys(literals)),
        keep_caps=tuple(dict.fromkeys(keep)),
        capitalization=policy.creative.capitalization,
        max_exclamation_marks=min(policy.creative.max_exclamation_marks, 3),
        max_headline=limits.max_headline_chars,
        max_body=limits.max_body_chars,
    )


def _tokens(text: str) -> list[str]:
    out = []
    for raw in text.split():
        token = raw.strip(".,;:!?()\"'")
        if token:
            out.append(token)
    return out


def _is_literal(token: str, policy: RetailerPolicy) -> bool:
    """A product or claim token the word terminals would not write as it is (digits, '&',
    '+', capitals inside), unless it shouts and the retailer does not allow that."""
    if re.fullmatch(r"[A-Za-z]+(?:-[A-Za-z]+)?", token) and not re.search(r".[A-Z]", token):
        return False
    letters = [c for c in token if c.isalpha()]
    shouts = len(letters) >= 2 and all(c.isupper() for c in letters)
    allowed = {a.upper() for a in policy.creative.allowed_acronyms}
    return not shouts or token.upper() in allowed or policy.creative.all_caps_words_allowed


def _distinctive_words(phrase: str) -> list[str]:
    """The words of a banned phrase the grammar bans: a one-word phrase itself; of a longer
    one, its longest word our own copy does not use (`tools.creative.words`),
    else its longest word. Banning "junk" stops "junk food"; banning "food" would stop all food
    copy. Longest alone banned "made" for Alpha's "made in usa", so the model could not write
    Acme's own "made for busy weeknights" there and wrote "madefor chips" instead (13 of 60
    variants of `rmn bench language` seed 0); "usa" stops the phrase as well."""
    words = [w for w in re.findall(r"[a-z]+", phrase.lower()) if len(w) >= 3]
    words = [w for w in words if w not in TITLE_SMALL_WORDS]
    if len(words) <= 1:
        return words
    rare = [w for w in words if w not in copy_words()]
    return [max(rare or words, key=len)]
