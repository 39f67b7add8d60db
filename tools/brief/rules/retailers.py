"""Retailers in a brief: the ones to plan on, the ones excluded, and names we do not know.

The retailers and brands are the catalog's (`tools.catalog`: a retailer's mapping names it
and its aliases, a brand.yaml the brand and its aliases), so a retailer added as files is
understood without code. A retailer is named by its full name, an alias, its first word or its
id ("Alpha Mart", "Alpha", "alpha"); a list after "except", "excluding", "not on" or "drop",
or before "is out", is excluded, from the named retailers or, when the brief says "all
retailers" or names none to include, from every retailer the brand sells through ("only"
after a mention of the list keeps that one in). A mention in a sentence that only reports the
past plans nothing. Brand names are masked first ("Acme" is
not a retailer). A name that looks like a retailer but is not in the catalog ("Omega Mart",
"Walmart", "Zeta" listed with "Alpha") is an error, and so is a retailer the brand does not
sell through.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import NamedTuple

from tools.brief.rules.flight import MONTH_RE
from tools.brief.rules.text import SENTENCE_BREAK, clause_spans, mask
from tools.brief.schema import (
    BriefError,
    brand_retailers,
    canonical_retailers,
    retailer_label,
)
from tools.catalog import Catalog, current
from tools.english import english


def _name_pattern(name: str, first: str | None = None) -> str:
    """A retailer's name as briefs write it: in full, its first word, a plural or -y form of
    its second ("Beta Grocers", "Beta Grocery", "Beta"); `first` in place of its first word
    (a typo of it: "alhpa mart 75k" named Alhpa alone, yb33 of unseen46)."""
    head, _, rest = name.lower().partition(" ")
    first = first or head
    if not rest:
        return re.escape(first)
    # its second word misspelt after the first ("alpha mrt", "beta grocrs": yc39 of unseen47)
    forms = [rf"{re.escape(rest)}s?", rf"{re.escape(rest.rstrip('s'))}y?",
             *(re.escape(t) for t in _slips(rest))]  # fmt: skip
    return rf"{re.escape(first)}(?:[\s-]?(?:{'|'.join(forms)}))?"


def _slips(word: str) -> list[str]:
    """A word with two neighbouring letters swapped or one letter dropped, 3 letters or more."""
    swaps = [word[:i] + word[i + 1] + word[i] + word[i + 2 :] for i in range(len(word) - 1)]
    drops = [word[:i] + word[i + 1 :] for i in range(len(word))]
    return [t for t in dict.fromkeys(swaps + drops) if t != word and len(t) >= 3]


def _typos(word: str) -> list[str]:
    """A name's first word with two neighbouring letters swapped or one letter dropped
    ("alpah", "gama": y10 of unseen5 named no retailer the parser knew), for words of 5
    letters or more, leaving out English words ("delt" would not be, "beat" for "beta" would:
    4-letter names get none). Not a changed letter: "meta" is not "beta"."""
    if len(word) < 5 or not word.isalpha():
        return []
    return [t for t in _slips(word) if t not in english()]


def _retailer_pattern(rid: str, name: str, aliases: tuple[str, ...]) -> re.Pattern[str]:
    names = [_name_pattern(name), *(re.escape(a.lower()) for a in aliases)]
    names += [_name_pattern(name, t) for t in _typos(name.lower().partition(" ")[0])]
    if rid != name.lower().partition(" ")[0]:
        names.append(re.escape(rid))
    # Longest first, so "harbor grocery" wins over "harbor".
    alias = "(?:" + "|".join(sorted(dict.fromkeys(names), key=len, reverse=True)) + ")"
    # "Gamma-only test" names Gamma (ua38 of unseen40 named no retailer); "gamma-ray" does not.
    return re.compile(rf"(?<![\w-]){alias}(?!\w|-(?!only\b))(?!\s?(?:test|version|release)\b)")


@lru_cache(maxsize=32)
def _patterns(
    root: object, signature: tuple[tuple[str, str, tuple[str, ...]], ...]
) -> dict[str, re.Pattern[str]]:
    return {rid: _retailer_pattern(rid, name, aliases) for rid, name, aliases in signature}


def retailer_patterns(catalog: Catalog) -> dict[str, re.Pattern[str]]:
    """Retailer id -> the pattern that finds it in a brief (cached per catalog contents)."""
    signature = tuple((r.id, r.name, r.aliases) for r in catalog.retailers.values())
    return _patterns(catalog.root, signature)


def _brand_names(catalog: Catalog, brand_id: str) -> set[str]:
    info = catalog.brands[brand_id]
    return {
        info.name.lower().rstrip("."),
        brand_id.replace("_", " "),
        brand_id,
        *(a.lower() for a in info.aliases),
    }


_ALL_RETAILERS = re.compile(
    r"\b(?:all|every|each)\s+(?:\d+\s+|of\s+)?(?:(?:our|the|its|their|my|his|her|of our|of the|"
    r"of its)\s+)?(?:\w+\s+)?(?:retailers?|networks?|rmns?|retail media networks?|channels|"
    r"partners|banners|stores)\b|\beverywhere\b|\bacross the board\b|\beverything\b"
    # a form's "Retailers: all" (xa04 of unseen43: marked as the default, "the brief names none")
    r"|\b(?:retailers?|rmns?|networks?)\s*[:=|-]\s*(?:all|every one|all of them)\b"
)

# "All retailers" said of the plan itself ("across all our retailers", "all three retailers",
# "spread it everywhere", "Retailers: all of ours"), not "everything else stands" nor "max CPC
# across the board" nor "each retailer" (a per-retailer limit): named retailers beside it are
# context ("Delta's average basket is $130", "our JBP with Beta expired", "cap Gamma at $300K")
# unless words keep them ("but only Alpha and Beta this time"). 11 briefs of unseen50 to
# unseen53 planned only the retailers named in passing; the 11 briefs of every set whose named
# retailers were right beside "all"-like words have only the weaker words, or words that keep
# the named ones in.
_EVERY_RETAILER = re.compile(
    r"\ball\s+(?:\d+\s+|of\s+)?(?:(?:our|the|its|their|my|of our|of the|of its)\s+)?(?:\w+\s+)?"
    r"(?:retailers|networks|rmns|retail media networks|(?:retail )?partners)\b|\beverywhere\b"
    r"|\b(?:retailers?|rmns?|networks?)\s*[:=|-]\s*(?:all|every one|all of them|all of ours)\b"
)


# ... or both, of a brand that sells through two: "Plan the remaining amount for January across
# both our retailers" (yj06 of unseen54, once the Alpha of money spent elsewhere was no ask).
_BOTH_RETAILERS = re.compile(
    r"\bboth\s+(?:of\s+)?(?:(?:our|the|its|their|my)\s+)?(?:retailers|networks|rmns|partners)\b"
)


def asks_every_retailer(scan: str, brand: str | None = None) -> bool:
    """Whether the brief says its plan covers all retailers (`_EVERY_RETAILER`, and "both" of
    a `brand` that sells through two); `scan` is the brief in lower case with brand names
    masked (`brand_name_spans`)."""
    if _EVERY_RETAILER.search(scan):
        return True
    return brand is not None and len(brand_retailers(brand)) == 2 and bool(
        _BOTH_RETAILERS.search(scan)
    )


EXCLUDE_CUE = re.compile(
    r"\b(?:except(?: for)?|excluding|exclude|but not|other than|apart from|minus|not on|no|"
    r"without|skip|skipping|leave out|leaving out|all but|not|drop|dropping|remove|removing|"
    r"pause|pausing|paused|(?:don'?t|do not|not) use|avoid|scratch|scrap|"
    # "Scratch the Gamma part of the request below" (yj20 of unseen54 planned Gamma)
    r"(?:scratch|scrap|forget|ignore|disregard) (?:the|my)|"
    r"pull(?:ing|ed)? out of|"  # "we're pulling out of Alpha Mart for now" (ma15 of unseen33)
    # "we're not running Beta Grocers this time" (yd14 of unseen48 planned it)
    r"(?:not|n't|won't be|aren't) (?:running|using|buying|including|doing)|"
    # "That's it, nothing at Delta this time", "not repeating Alpha", "no media on Beta" (yv08
    # and yv03 of unseen66 planned them)
    r"nothing (?:at|on|for|in|with|to)|(?:not|n't) (?:repeating|renewing|returning to)|"
    r"no (?:media|spend|ads|budget|dollars|money) (?:at|on|for|in|with|to)|"
    r"(?:retailers?|networks?|everywhere|everything|in)\s+but)\s+$"
)
# Words after a mention (or a list) that exclude it: "Beta Grocers is out this round", "leave
# Alpha and Beta out of this one" (p46 of unseen10, v46 of unseen9: both read as included),
# "Delta Home is on hold" (m28 of unseen16), "Alpha is being handled by a separate JBP deal",
# "(beta is handled by another agency)", "alpha TBD" (c10, d05 and d34 of unseen20/21).
# Said with "'s" too: "(Gamma's paused while we renegotiate)", "(Gamma's being handled by the
# pharmacy team separately)" (j43 and la11 of unseen26/30); or with no verb: "(Delta paused)",
# "gamma pharmacy excluded" (l52 and l14 of unseen27).
# "Alpha Mart and Beta Grocers are both paused" (ka50 of unseen32); a table row that says no,
# "Delta Home | no (paused until summer)" (ma08 of unseen33).
_EXCLUDED_AFTER = re.compile(
    r"(?:\s+(?:is|are)\s+(?:both\s+|all\s+)?|'s\s+)"
    r"(?:out|off|paused|excluded|dropped|on hold|on pause)\b"
    # "| Gamma Pharmacy | paused | - |" (yv14 of unseen66 planned Gamma)
    r"|[ \t]*\|[ \t]*(?:no|out|excluded|paused|inactive|on hold|dropped)(?=[ \t]*(?:\(|\||\n|$))"
    r"|(?:\s+(?:is|are)\s+|'s\s+)(?:being\s+)?(?:handled|covered|bought|run)\s+"
    r"(?:(?:separately|elsewhere)\b|(?:separately\s+)?(?:by|through|under)\b)"
    r"|\s+(?:tbd|out(?!\s*-?\s*of[\s-]+stock)|paused|excluded|on hold|on pause)\b"
    # "Delta's not in scope", "Beta & Delta sit this one out" (ta52, ta57 of unseen39).
    r"|(?:\s+(?:is|are)\s+|'s\s+)not\s+in\s+scope\b"
    r"|\s+(?:(?:will|can|should|are|is)\s+)?(?:sit|sits|sitting)\s+"
    r"(?:(?:this|that)\s+(?:one|round|time|quarter|flight)\s+)?out\b"
)
# A pronoun that leaves out what was just named, later in its sentence: "(Gamma is handled
# separately by the pharmacy team, leave it out)" (sa18 of unseen38 planned Gamma too). "it"
# speaks of a lone mention, "them" of a list; no other retailer may be named in between.
_PRONOUN_OUT = re.compile(
    r"\b(?:(?:leave|keep)\s+(?P<out>it|them|that one|those)\s+(?:out|off)"
    r"|(?:drop|exclude|skip)\s+(?P<p>it|them|that one|those))\b"
)
_PRONOUN_STOP = re.compile(r"[.!?](?=\s|$)|\n")
# Words after a list that speak of its last mention alone: "They want Alpha Mart and Delta Home,
# Beta is on pause" (f57 of unseen23 excluded all three and refused the brief).
_SINGULAR = re.compile(r"\s+(?:is\b|tbd\b)|'s\b")
# Words that keep a mention (or a list) in: "Gamma Pharmacy only", "just Delta", "only on
# Alpha", a "retailers:" field. The model excluded lone mentions such as "Gamma Pharm only"
# and "Retailers | Alpha Mart" (p15, p27, p38 of unseen10, v03 and v23 of unseen9).
_ONLY_AFTER = re.compile(r"(?:-|[ \t]*(?:[a-z]+[ \t]+)?)(?:only|alone|exclusively)\b")
_ONLY_BEFORE = re.compile(
    r"(?:\b(?:only|just|exclusively|solely)(?:\s+(?:on|at|in|with|through))?"
    r"|\bretailers?\s*(?:\*\*)?\s*[:|=-]\s*\[?"
    # "drop Delta ... Put it all on Alpha" (yq23 of unseen61 kept the earlier two)
    r"|\b(?:put|move|shift) (?:it|everything|the (?:whole )?budget) all (?:on|to|into)"
    r"|\b(?:put|move|shift) (?:it all|everything|all of it|the whole budget) (?:on|to|into))\s*$"
)
_RETAILER_SUFFIX = re.compile(
    r"\b([a-z][a-z0-9&'-]*)\s+(mart|market|markets|grocers|grocer|grocery|groceries|pharmacy|"
    r"drugstore|drug|drugs|stores|supermarket|supermarkets|supercenter|club|depot|wholesale|"
    r"home)\b"
)
_SUFFIX_STOP = {
    "the", "a", "an", "our", "your", "their", "my", "its", "this", "that", "any", "every", "each",
    "one", "retail", "in", "at", "new", "stock", "super", "flea", "farmers", "online", "local",
    "big", "box", "mass", "other", "same", "all", "no", "of", "to", "for", "and", "or", "on",
    "whole", "natural", "organic", "snack", "pet", "than", "across", "per", "grocery",
    "pharmacy", "drug", "home", "from", "with", "by", "is", "are", "via", "into", "between",
}  # fmt: skip
_GREEK = (
    "epsilon", "zeta", "theta", "iota", "kappa", "lambda", "omicron", "sigma", "upsilon", "omega",
)  # fmt: skip
_REAL_RETAILERS = (
    "walmart", "kroger", "amazon", "instacart", "cvs", "walgreens", "costco", "albertsons",
    "safeway", "home depot", "best buy", "ulta", "sephora", "dollar general", "sam's club",
    "doordash", "rite aid", "publix", "meijer", "lowe's", "wayfair", "chewy", "whole foods",
)  # fmt: skip
_NAME_STOP = {
    "and", "or", "the", "i", "we", "please", "hold", "keep", "include", "exclude", "maximize",
    "maximise", "optimize", "allocate", "spend", "objective", "goal", "budget", "roas", "q1",
    "q2", "q3", "q4", "flight", "reserve", "experiments", "tests", "no", "not", "only", "with",
    "total", "usd", "retailers", "all", "plan", "let's", "put", "run", "for", "to", "in", "on",
}  # fmt: skip


def brand_name_spans(low: str, catalog: Catalog) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    for bid in catalog.brands:
        for name in _brand_names(catalog, bid):
            for m in re.finditer(rf"(?<![\w-]){re.escape(name)}(?![\w-])", low):
                spans.append(m.span())
    return spans


def _unknown_retailers(
    text: str, scan: str, known_spans: list[tuple[int, int]], brand_spans: list[tuple[int, int]]
) -> list[str]:
    """Names that look like retailers but are not ones we know: "Omega Mart", "Epsilon",
    "Walmart", or a capitalized name listed with a known retailer ("Alpha, Beta and Zeta")."""

    def inside(pos: int, spans: list[tuple[int, int]]) -> bool:
        return any(s <= pos < e for s, e in spans)

    unknown: list[str] = []
    for m in _RETAILER_SUFFIX.finditer(scan):
        # "Delta Home for their January home event" (yo15 of unseen59 was refused); a product
        # line after the brand's name: "Initech Smart Home — H1 ask" (yq24 of unseen61 was
        # refused as retailer 'Smart Home').
        line = any(e <= m.start() and not scan[e : m.start()].strip() for _, e in brand_spans)
        if m.group(1) not in _SUFFIX_STOP and not MONTH_RE.fullmatch(m.group(1)) and not (
            line or inside(m.start(), known_spans + brand_spans)
        ):
            unknown.append(text[m.start() : m.end()])
    # Catalog retailers may carry these names too ("Epsilon Foods", a user's "Walmart"):
    # only a mention outside a known retailer's name is unknown.
    for word in _GREEK:
        # "Our rival Brand Omega just announced a $2.5M push" named no retailer (ya53 of
        # unseen44 was refused).
        for m in re.finditer(rf"(?<!\bbrand )\b{word}\b(?!'s brand| brand\b)", scan):
            if inside(m.start(), known_spans):
                continue
            if not any(word in u.lower() for u in unknown):
                unknown.append(text[m.start() : m.end()])
    for name in _REAL_RETAILERS:
        for m in re.finditer(rf"(?<!\w){re.escape(name)}(?!\w)", scan):
            if not inside(m.start(), known_spans):
                unknown.append(text[m.start() : m.end()])
    for _s, e in known_spans:
        m = re.match(r"\s*(?:,|and|&|\+|/|or)\s*([A-Z][\w'-]+)", text[e : e + 30])
        if not m:
            continue
        word, start = m.group(1), e + m.start(1)
        if (
            word.lower() in _NAME_STOP
            or inside(start, known_spans + brand_spans)
            # "Alpha Mart and Gamma Pharmacy, April-June 2027" (u46 of unseen7) named none, nor
            # "Alpha Mart + Delta Home, H2 2027" (m57 of unseen16: refused as retailer 'H2').
            or MONTH_RE.fullmatch(word.lower().split("-")[0])
            or re.fullmatch(r"[hq][1-4]|fy\d*", word.lower())
            or any(word.lower() in u.lower() for u in unknown)
        ):
            continue
        unknown.append(word)
    return list(dict.fromkeys(unknown))


class RetailerReading(NamedTuple):
    """What `read_retailers` found in a brief."""

    retailers: list[str] | None  # None when the text names none; [] for every retailer
    mentioned: set[str]  # every retailer the text names
    mentions: list[tuple[int, int, str]]  # (start, end, retailer id), in the text's order
    warnings: list[str]
    errors: list[BriefError]
    excluded: set[str]  # the retailers its words leave out ("drop Delta")
    kept: bool  # whether words keep a named retailer in ("just Alpha Mart and Beta Grocers")


def read_retailers(
    text: str, low: str, brand: str, past: list[tuple[int, int]] | None = None
) -> RetailerReading:
    """The retailers to plan on, and what the text says of each. A mention inside a sentence
    that only reports the past (`past`, `text.past_sentences`: "Last time (Sept 2026) we did
    $300k at Alpha") plans nothing."""
    warnings: list[str] = []
    errors: list[BriefError] = []
    catalog = current()
    brand_spans = brand_name_spans(low, catalog)
    scan = mask(low, brand_spans)
    mentions = sorted(
        (m.start(), m.end(), rid)
        for rid, pattern in retailer_patterns(catalog).items()
        for m in pattern.finditer(scan)
    )
    spans = [(s, e) for s, e, _ in mentions]

    asked = [m for m in mentions if not any(ps <= m[0] < pe for ps, pe in past or [])]
    if _SAME_AGAIN.search(scan):
        # "we spent 1.7M last year on alpha; ..., same retailer" (d44); "same retailer plus
        # Alpha Mart" kept Alpha Mart alone (ta04 of unseen39).
        asked = mentions
    included, excluded, kept_any = _included_and_excluded(scan, _after_retraction(scan, asked))
    unknown = _unknown_retailers(text, scan, spans, brand_spans)
    if unknown:
        known = ", ".join(r.label for r in catalog.retailers.values())
        errors.append(
            BriefError(
                f"unknown retailer {', '.join(repr(n) for n in unknown)}; known retailers: "
                f"{known} (a retailer is added as files: `rmn retailers add`)",
                field="retailers",
                retailers=unknown,
                known=list(catalog.retailers),
            )
        )

    sold = brand_retailers(brand)
    not_sold = [r for r in canonical_retailers(included | excluded) if r not in sold]
    if not_sold:
        errors.append(
            BriefError(
                f"{catalog.brands[brand].label} does not sell through "
                f"{', '.join(retailer_label(r) for r in not_sold)}; its retailers: "
                f"{', '.join(retailer_label(r) for r in sold)}",
                field="retailers",
                retailers=not_sold,
                brand=brand,
                brand_retailers=sold,
            )
        )

    says_all = bool(_ALL_RETAILERS.search(scan))
    retailers: list[str] | None
    if excluded:
        # A retailer named and left out is left out: "we spent $650k at Gamma Pharmacy ...,
        # so this time leave Gamma out" (sa02 of unseen38) excluded every retailer.
        kept = included - excluded
        base = kept if kept and not says_all else set(sold)
        retailers = canonical_retailers(base - excluded)
        if not retailers and not not_sold:
            errors.append(
                BriefError(
                    f"the brief excludes every retailer {catalog.brands[brand].name} sells through",
                    field="retailers",
                )
            )
    elif included and asks_every_retailer(scan, brand) and not kept_any:
        retailers = []
        named = ", ".join(retailer_label(r) for r in canonical_retailers(included))
        warnings.append(f"the brief says all retailers: planned every one ({named} named "
                        "without asking for it alone)")  # fmt: skip
    elif included:
        retailers = canonical_retailers(included)
        if says_all and set(retailers) != set(sold):
            warnings.append(
                f"the brief says all retailers but names {', '.join(retailers)}; "
                "planned over the named ones"
            )
    elif says_all:
        retailers = []
    else:
        retailers = None
    return RetailerReading(
        retailers, included | excluded, mentions, warnings, errors, excluded, kept_any
    )


# "same retailer" asks again for the retailers a past sentence names (d44 of unseen21: "we spent
# 1.7M last year on alpha; this year budget is 2.1M, same retailer" planned every retailer).
_SAME_AGAIN = re.compile(r"\bsame (?:retailers?|networks?|partners?|rmns?|mix)\b")
# Words that take back what was just said: "Alpha Mart only. Actually, scratch that - do Gamma
# Pharmacy only." (n35 of unseen16 planned both).
_RETRACT = re.compile(r"\b(?:scratch|scrap|forget|ignore|disregard)\s+(?:that|this|the above)\b")
# An earlier draft's retailers, named again after it: "Originally we said Alpha and Beta, but
# make it Alpha Mart and Gamma Pharmacy instead", "We originally discussed Beta Grocers too,
# but ... plan Alpha Mart and Delta Home only" (y42 of unseen5, l29 of unseen27).
_EARLIER_DRAFT = re.compile(r"\b(?:originally|initially|at first|first draft)\b")
# ... unless what follows adds to them: "we originally said 2M for Q1 across Alpha and Beta, but
# let's actually do 2.3M and add Gamma too" (c42 of unseen20).
_ADDED = re.compile(r"\b(?:add|adding|also|too|as well|plus)\b")


def _sentence_end(scan: str, pos: int) -> int:
    end = SENTENCE_BREAK.search(scan, pos)
    return end.start() if end else len(scan)


def _after_retraction(
    scan: str, mentions: list[tuple[int, int, str]]
) -> list[tuple[int, int, str]]:
    """The mentions left when words take back what came before and the same sentence names
    retailers again ("scratch that - do Gamma Pharmacy only": those from the retraction on),
    less those of a clause about an earlier draft that retailers are named after."""
    drafts = [
        (s, e) for s, e in clause_spans(scan)
        if _EARLIER_DRAFT.search(scan, s, e) and not _ADDED.search(scan, e, _sentence_end(scan, e))
    ]  # fmt: skip
    mentions = [
        x for x in mentions
        if not any(s <= x[0] < e and any(y[0] >= e for y in mentions) for s, e in drafts)
    ]  # fmt: skip
    for m in reversed(list(_RETRACT.finditer(scan))):
        stop = _sentence_end(scan, m.end())
        if _ADDED.search(scan, m.end(), stop):
            continue  # "scratch that, include Gamma Rx too" adds to it (yn17 of unseen58)
        if any(m.end() <= s < stop for s, _e, _r in mentions):
            return [x for x in mentions if x[0] >= m.end()]
    return mentions


def _included_and_excluded(
    scan: str, mentions: list[tuple[int, int, str]]
) -> tuple[set[str], set[str], bool]:
    """(retailers the brief plans on, retailers it excludes: "except Beta and Delta", whether
    words keep an included one in: "Gamma only")."""
    included: set[str] = set()
    excluded: set[str] = set()
    kept_any = False
    for (_s, _e, rid), (cue, kept) in zip(mentions, mention_cues(scan, mentions), strict=True):
        (excluded if cue is not None else included).add(rid)
        kept_any |= kept and cue is None
    return included, excluded, kept_any


def mention_cues(
    scan: str, mentions: list[tuple[int, int, str]]
) -> list[tuple[int | None, bool]]:
    """For each mention (start, end, retailer id; in the brief's order): where the words that
    exclude it begin ("except ", "not on "; for a list, "except Beta and Delta", its head's;
    words after a list, "Beta and Delta are out", where they begin; a singular "is out" after a
    list, its last mention's only), or None when none govern it; and
    whether words keep it in the plan ("Gamma Pharmacy only", "just Delta", "Retailers | Alpha
    Mart"; for a list, the list's). A mention's own "only" beats its list's exclusion: "drop
    Alpha Mart, Delta Home only" (w31 of unseen8)."""
    cues: list[tuple[int | None, bool]] = []
    for i, (s, e, _) in enumerate(mentions):
        head, last = _list_bounds(scan, mentions, i)
        kept = _kept_by_words(scan, mentions[head][0], mentions[last][1])
        if _kept_by_words(scan, s, e):
            head = last = i
        head_start = max(0, mentions[head][0] - 25)
        m = EXCLUDE_CUE.search(scan[head_start : mentions[head][0]])
        after = _EXCLUDED_AFTER.match(scan, mentions[last][1])
        if after and i != last and _SINGULAR.match(after.group()):
            after = None  # "Alpha Mart and Delta Home, Beta is on pause": Beta alone (f57)
        cue = head_start + m.start() if m else mentions[last][1] + after.start() if after else None
        if cue is None:
            cue = _pronoun_cue(scan, mentions, head, last)
        cues.append((cue, kept))
    return cues


def _pronoun_cue(
    scan: str, mentions: list[tuple[int, int, str]], head: int, last: int
) -> int | None:
    """Where a pronoun after the list `head..last` leaves it out ("..., leave it out"), before
    the sentence ends or another retailer is named; else None."""
    end = mentions[last][1]
    stop = _PRONOUN_STOP.search(scan, end)
    limit = stop.start() if stop else len(scan)
    if last + 1 < len(mentions):
        limit = min(limit, mentions[last + 1][0])
    m = _PRONOUN_OUT.search(scan, end, limit)
    if not m or ((m.group("out") or m.group("p")) in ("it", "that one")) != (head == last):
        return None
    return m.start()


def _kept_by_words(scan: str, s: int, e: int) -> bool:
    return bool(_ONLY_BEFORE.search(scan[max(0, s - 25) : s]) or _ONLY_AFTER.match(scan, e))


def _list_bounds(scan: str, mentions: list[tuple[int, int, str]], i: int) -> tuple[int, int]:
    """The first and the last mention of the list ("Beta and Delta", "Alpha, Beta & Delta")
    that mention `i` belongs to."""
    joined = r"\s*(?:,|and|or|&|/|\+|nor)\s*"
    head = last = i
    while head > 0 and re.fullmatch(joined, scan[mentions[head - 1][1] : mentions[head][0]]):
        head -= 1
    while last + 1 < len(mentions) and re.fullmatch(
        joined, scan[mentions[last][1] : mentions[last + 1][0]]
    ):
        last += 1
    return head, last


def other_brand_words(brand: str) -> list[str]:
    """The names other brands go by in a brief, lower-case: display names and ids ("initech
    home", "initech"): a brief speaks of a rival brand by its short name."""
    catalog = current()
    names = [(info.name.lower().rstrip("."), bid.replace("_", " "))
             for bid, info in catalog.brands.items() if bid != brand]  # fmt: skip
    return list(dict.fromkeys(word for pair in names for word in pair))


def other_brands_warning(low: str, brand: str) -> str | None:
    """A warning when the brief names another brand than the one it is parsed for."""
    catalog = current()
    other_brands = [
        info.name
        for bid, info in catalog.brands.items()
        if bid != brand
        and re.search(rf"(?<![\w-]){re.escape(info.name.lower().rstrip('.'))}\b", low)
    ]
    if not other_brands:
        return None
    return f"the brief mentions {', '.join(other_brands)}, but it is parsed for " + (
        catalog.brands[brand].label
    )
