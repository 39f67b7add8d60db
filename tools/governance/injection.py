"""Prompt-injection detection in the texts a plan is built from and shows.

Texts are data, never instructions. Two trust levels decide what counts as an attempt:

- the brief (the user's own words) and the rationale (the planner's own words) may state
  business choices: budget, split, retailers to leave out, floors. "Ignore Gamma this quarter",
  "put all the budget into search" and "set the ROAS floor to 2.5" are a brief, not an attack.
  What no brief may do is override the system's instructions or the retailers' policies, pull
  out data (customer lists, keys, the system prompt, other tenants' plans), make the model play
  another role, hide text, or ask for something to be kept from the reviewer.
- everything else (retrieved policy documents, ad copy, tool output) has no business telling
  the planner anything: on top of the rules above, instructions to change the budget, the
  allocation or a constraint, to approve or mark something compliant, claims of exemption,
  and sentences addressed to the AI are attempts.

Matching runs on a normalized copy of the text (default-ignorable code points removed, as the
PII scanner reads it: `tools.governance.unicode`; then NFKC, common Cyrillic/Greek look-alikes
folded to Latin, lower case) so that "Ｉｇｎｏｒｅ", "Ignоre" (Cyrillic o), "Ig\u200bnore" and
"ig\u00adnore" (a soft hyphen) read as "ignore"; offsets in findings point into the original
text.
Statements under a negation in the same sentence ("brands must not share shopper data") are
rules, not requests, and are not flagged.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from tools.catalog import current, load_catalog
from tools.governance.errors import GovernanceInputError
from tools.governance.unicode import drop_ignorable
from tools.plan import Finding

INJECTION = "PROMPT_INJECTION"
# Sources whose words are the user's or the planner's own.
TRUSTED_SOURCES = ("brief", "rationale")

_ZERO_WIDTH = frozenset("\u200b\u200c\u200d\u2060\u2061\u2062\u2063\u2064\u180e\ufeff")
_BIDI = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
# Letters that render like Latin ones; NFKC keeps them apart.
_LOOKALIKES = str.maketrans(
    {
        "а": "a", "е": "e", "о": "o", "р": "p", "с": "c", "у": "y", "х": "x", "і": "i",
        "ј": "j", "ѕ": "s", "ԁ": "d", "һ": "h", "ӏ": "l", "ɡ": "g", "ο": "o", "α": "a",
        "ι": "i", "ε": "e", "ν": "v", "τ": "t", "κ": "k", "ρ": "p",
    }
)  # fmt: skip
MIN_ZERO_WIDTH = 3  # a stray zero-width space from a paste is not an attack


def _is_tag(ch: str) -> bool:
    return 0xE0000 <= ord(ch) <= 0xE007F


def _is_pictograph(ch: str) -> bool:
    return unicodedata.category(ch) == "So" or ord(ch) >= 0x1F000


def normalize(text: str) -> tuple[str, list[int]]:
    """The text to match on, and for each of its characters the index it came from."""
    visible, origin = drop_ignorable(text)
    chars: list[str] = []
    index: list[int] = []
    for i, ch in zip(origin, visible, strict=True):
        for c in unicodedata.normalize("NFKC", ch).lower().translate(_LOOKALIKES):
            chars.append(c)
            index.append(i)
    return "".join(chars), index


# --- rules ------------------------------------------------------------------------------------

# One more word, on the same line and without punctuation between: a list of field names
# ("email, phone, device_id") is not a sentence.
_W = r"(?:[^\S\n]+[\w'-]+)"
# "No matter what, ignore..." and "don't worry, send..." are not negated requests.
_NEG = re.compile(
    r"\b(?:not|never|no|cannot|can't|don't|doesn't|mustn't|won't|shouldn't)\b"
    r"(?! matter| worry| hesitate| forget)"
)
_SENTENCE_END = re.compile(r"[.;!?\n]\s")

_OVERRIDE_VERBS = (
    r"(?:ignor(?:e|es|ed|ing)|disregard(?:s|ed|ing)?|forg(?:et|ets|ot|otten|etting)|"
    r"overrid(?:e|es|den|ing)|overrode|bypass(?:es|ed|ing)?|circumvent(?:s|ed|ing)?|"
    r"skip(?:s|ped|ping)?|evad(?:e|es|ed|ing)|overlook(?:s|ed|ing)?|set aside|"
    r"pay no attention to|work(?:ed)? around|g[eo]t around|abandon(?:ed)?|discard(?:ed)?)"
)
_INSTRUCTION_NOUNS = (
    r"(?:instructions?|prompts?|directives?|guidance|guardrails?|safeguards?|"
    r"system (?:prompt|message)|programming)"
)
_POLICY_NOUNS = (
    r"(?:polic(?:y|ies)|rules|guidelines|restrictions|constraints|(?:spend )?caps?|limits|"
    r"compliance|governance|checks?|filters?|k-?anonymity|privacy|approval|review|moderation|"
    r"safety)"
)
_SENSITIVE = (
    r"(?:(?:customer|shopper|user|member|loyalty|household|client)s?'?\s+"
    r"(?:lists?|data|records|e-?mails?|addresses|files?|ids|details|pii)"
    r"|(?:e-?mail|mailing|contact) lists?"
    r"|(?:user|household|device)[_ ]ids?"
    r"|pii|personal (?:data|information|details)"
    r"|raw (?:data|rows|events|records|clean[- ]room)"
    r"|clean[- ]room (?:data|rows|records|tables)"
    r"|(?:row|event|user|household)[- ]level data"
    r"|api[_ ]?keys?|secret keys?|secrets|passwords?|credentials|access tokens?"
    r"|system prompt"
    r"|(?:your|hidden|initial|original|internal) (?:instructions|prompt|configuration)"
    r"|contents of your"
    r"|other (?:tenants?|brands?|advertisers?)'?s?'? (?:data|plans?|budgets?|spend)"
    r"|competitors?'?s?'? (?:data|plans?|budgets?|bids?))"
)
_EXFIL_VERBS = (
    r"(?:send|e-?mail|mail|upload|post|export|forward|share|leak|transmit|exfiltrate|dump|"
    r"copy|paste|print|reveal|show|output|display|repeat|disclose|list|include|give me|"
    r"tell me|provide|return|reply with|write out|append)"
)
_AI = r"(?:ai|llm|language model|assistant|chatbot|copilot|planning model|planner|agent|model)s?"
_ROLES = (
    r"(?:ai|assistant|model|planner|agent|bot|admin|administrator|developer|system|dan|"
    r"superuser|root|jailbroken|unrestricted|unfiltered|compliance team|governance team|"
    r"approver|reviewer)"
)


@dataclass(frozen=True)
class Rule:
    name: str
    pattern: re.Pattern[str]
    trusted_too: bool  # applies to the brief and rationale as well
    negatable: bool = False  # not flagged under a negation earlier in the sentence


def _rule(name: str, regex: str, trusted_too: bool = True, negatable: bool = False) -> Rule:
    return Rule(name, re.compile(regex, re.MULTILINE), trusted_too, negatable)


RULES: tuple[Rule, ...] = (
    _rule(
        "override instructions",
        rf"\b{_OVERRIDE_VERBS}\b{_W}{{0,3}}?[^\S\n]+{_INSTRUCTION_NOUNS}\b",
        negatable=True,
    ),
    _rule(
        "override policy",
        rf"\b{_OVERRIDE_VERBS}\b{_W}{{0,3}}?[^\S\n]+{_POLICY_NOUNS}\b(?! of\b)",
        negatable=True,
    ),
    _rule(
        "override everything before",
        rf"\b{_OVERRIDE_VERBS}\s+(?:everything|anything|all)"
        r"(?:\s+(?:you were told|you've been told))?"
        r"\s+(?:above|before|prior|previous(?:ly)?|earlier|else)\b",
    ),
    _rule(
        "disable checks",
        r"\b(?:disable|turn off|switch off|deactivate|suspend)\b(?:\W+\w+){0,3}?\W+"
        r"(?:compliance|governance|checks?|filters?|safety|moderation|k-?anonymity|privacy|"
        r"approval|review|guardrails?)\b",
        negatable=True,
    ),
    _rule(
        "exfiltrate data",
        rf"\b{_EXFIL_VERBS}\b{_W}{{0,6}}?[^\S\n]+{_SENSITIVE}",
        negatable=True,
    ),
    _rule("exfiltrate via link", r"!\[[^\]]*\]\(\s*https?://[^)\s]+\?[^)\s]*\)"),
    _rule(
        "role change",
        rf"\byou are now (?:an? |the )?(?:[\w-]+ ){{0,2}}?{_ROLES}\b"
        rf"|\b(?:act|behave|respond|operate|role-?play|pose) as (?:an? |the |if you were )?"
        rf"(?:[\w-]+ ){{0,2}}?{_ROLES}\b"
        rf"|\b(?:impersonate|play the role of) (?:an? |the )?(?:[\w-]+ ){{0,2}}?{_ROLES}\b"
        r"|\bpretend (?:to be|you are|you're|that you are)\b"
        r"|\b(?:developer|god|admin|debug|jailbreak|dan|sudo) mode\b"
        r"|\bjailbr(?:eak|oken)\b|\bdo anything now\b|\byou are dan\b"
        r"|\bfrom now on,? you\b",
    ),
    _rule(
        "injected instructions",
        r"\b(?:new|updated|revised|real|actual|true|hidden) (?:system )?instructions?\s*:"
        r"|\byour (?:real|actual|true|new|updated|only) (?:instructions|objective|task|goal|role|"
        r"purpose|job)\b"
        r"|\b(?:system|admin) override\b"
        r"|^\s*#{1,6}\s*(?:new |updated )?(?:system|instructions?)\b"
        r"|(?:^|<!--|\[|\()\s*(?:system|assistant|developer|admin)\s*[:\]]"
        r"|<\|(?:im_start|im_end|system|assistant|user)\|>|\[/?inst\]|<<sys>>",
    ),
    _rule(
        "concealment",
        r"\b(?:do not|don't|dont|never|without)\s+(?:tell(?:ing)?|inform(?:ing)?|"
        r"mention(?:ing)?|reveal(?:ing)?|alert(?:ing)?|notify(?:ing)?|disclos(?:e|ing))\s+"
        r"(?:this|these|it|that|anyone|(?:the )?(?:user|human|reviewer|approver|client|team|"
        r"governance|compliance)|(?:these|the) (?:instructions|changes))\b"
        r"|\b(?:do not|don't|dont|never|without)\s+(?:flag(?:ging)?|report(?:ing)?|log(?:ging)?)\b"
        r"|\b(?:secretly|quietly|silently|covertly)\s+(?:\w+\s+){0,2}?(?:move|shift|add|set|"
        r"change|send|approve|allocate|increase|raise|remove|e-?mail|upload|put)\b"
        r"|\bkeep (?:this|it) (?:hidden|secret|between us)\b",
    ),
    _rule(
        "claims an exemption",
        r"\b(?:caps?|limits?|rules|polic(?:y|ies)|restrictions|guidelines)\s+(?:do not|don't|no "
        r"longer|won't|does not|doesn't)\s+apply\b"
        r"|\b(?:is|are)\s+(?:now\s+)?exempt(?:ed)?\s+from\b",
    ),
    _rule(
        "hidden text",
        r"<[^>]+style\s*=\s*[\"'][^\"']*(?:display\s*:\s*none|visibility\s*:\s*hidden|"
        r"font-size\s*:\s*0|opacity\s*:\s*0(?:\.0+)?\s*[;\"']|color\s*:\s*(?:white|#fff\b|#ffffff))",
    ),
    _rule(
        "change budget or constraints",
        r"\b(?:set|change|increase|raise|lower|reduce|double|triple|boost|update|reset|make)\b"
        r"(?:\W+[\w'-]+){0,4}?\W+(?:budgets?|spend|allocation|caps?|roas floor|floor|reserve|"
        r"bids?|threshold)\b(?:\W+\w+){0,3}?\W+(?:to|by)\s+(?:\$|\d|zero\b)"
        r"|\b(?:double|triple)\s+(?:every|all|the)\s+bids?\b"
        r"|\b(?:budgets?|spend|allocation|caps?|roas floor|floor|reserve|bids?|threshold)\b"
        r"(?:\W+[\w'-]+){0,5}?\W+(?:should|must|shall|will|is to|are to)\s+be\s+(?:set|changed|"
        r"raised|increased|lowered|reduced|moved|doubled|shifted)\s+to\b",
        trusted_too=False,
    ),
    _rule(
        "reallocate budget",
        r"\b(?:allocate|move|shift|put|reallocate|spend|direct|send|give|pour)\s+"
        r"(?:all|100\s?%|(?:the )?(?:entire|whole|full|remaining)|every (?:dollar|cent))"
        r"(?:\s+of)?(?:\s+(?:the|your|this))?\s+(?:budget|spend|money|dollars|allocation|media)\b",
        trusted_too=False,
    ),
    _rule(
        "approve or exempt",
        r"\b(?:auto-?)?approve\s+(?:this|the)\s+(?:plan|copy|ad|creative|campaign|allocation)\b"
        r"|\bmark\s+(?:[\w-]+\s+){0,3}?as\s+(?:approved|compliant|safe|verified|reviewed|passed)\b"
        r"|\b(?:is|are)\s+(?:now\s+)?(?:pre-?approved|whitelisted|allowlisted)\b"
        r"|\b(?:caps?|limits?|restrictions|rules|polic(?:y|ies))\s+(?:are|is|have been|has been)\s+"
        r"(?:waived|lifted|suspended|removed|disabled|void)\b"
        r"|\bregardless of (?:the|your) (?:brief|instructions|rules|polic(?:y|ies))\b",
        trusted_too=False,
    ),
    _rule(
        "addressed to the AI",
        rf"\b{_AI}\b[^.!?\n]{{0,40}}?\b(?:must|should|shall|need to|have to|are required to|"
        rf"reading this|processing this|parsing this)\b"
        rf"|\b(?:note|message|instructions?) (?:to|for) (?:the |any |all )?{_AI}\b"
        rf"|\b(?:attention|dear|hey|hello|hi),? (?:the |all |any )?{_AI}\b"
        r"|\bif you are an? (?:ai|llm|language model|assistant|bot|model)\b"
        r"|(?:^|[.!?]\s+)(?:assistant|ai|model|copilot|planner)\s*,",
        trusted_too=False,
    ),
)


def _negated(norm: str, start: int) -> bool:
    """Whether a negation precedes `start` in its sentence."""
    before = norm[:start]
    ends = list(_SENTENCE_END.finditer(before))
    sentence = before[ends[-1].end() :] if ends else before
    return bool(_NEG.search(sentence))


def _hidden_characters(text: str) -> list[tuple[int, int, str]]:
    """Runs of invisible characters that carry or hide text: tag characters (which can spell
    out a whole instruction), bidirectional overrides, and zero-width characters when there
    are several (a zero-width joiner inside an emoji sequence is normal)."""
    found: list[tuple[int, int, str]] = []
    tags = [i for i, ch in enumerate(text) if _is_tag(ch)]
    if tags:
        decoded = "".join(
            chr(ord(text[i]) - 0xE0000) for i in tags if 0x20 <= ord(text[i]) - 0xE0000 < 0x7F
        )
        found.append((tags[0], tags[-1] + 1, f"hidden tag characters spelling {decoded!r}"))
    bidi = [i for i, ch in enumerate(text) if ch in _BIDI]
    if bidi:
        found.append((bidi[0], bidi[-1] + 1, f"{len(bidi)} bidirectional override character(s)"))
    zero = [
        i
        for i, ch in enumerate(text)
        if ch in _ZERO_WIDTH
        and not (i == 0 and ch == "\ufeff")
        and not (
            ch == "\u200d"
            and 0 < i < len(text) - 1
            and _is_pictograph(text[i - 1])
            and _is_pictograph(text[i + 1])
        )
    ]
    if len(zero) >= MIN_ZERO_WIDTH:
        found.append((zero[0], zero[-1] + 1, f"{len(zero)} zero-width characters"))
    return found


_OTHER_TENANT_DATA = (
    r"(?:'s|s'|’s)?\s+(?:[\w-]+\s+){0,2}?(?:budgets?|plans?|spend(?:ing)?|bids?|"
    r"allocations?|data|results|sales|margins?|curves?|copy|briefs?)\b"
)


def _other_brands_pattern(tenant: str) -> re.Pattern[str] | None:
    """Names of brands the tenant does not own (in the catalog in force), followed by words
    for their plans or data."""
    return _brands_pattern(tenant, current().root)


@lru_cache(maxsize=64)
def _brands_pattern(tenant: str, root: Path) -> re.Pattern[str] | None:
    catalog = load_catalog(root)
    owners = catalog.owners()
    names: set[str] = set()
    for brand_id, info in catalog.brands.items():
        if owners.get(brand_id, brand_id) == tenant:
            continue
        first = info.name.split()[0]
        short = info.name.rsplit(" ", 1)[0] if first.lower() == "brand" else first
        names |= {brand_id.replace("_", " "), info.name.lower(), short.lower()}
    if not names:
        return None
    alternatives = "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True))
    return re.compile(rf"\b(?:{alternatives})\b{_OTHER_TENANT_DATA}")


def _where_trusted(where: str) -> bool:
    head = re.split(r"[\[.]", where.strip(), maxsplit=1)[0].lower()
    return head in TRUSTED_SOURCES


def detect_injection(text: str, where: str, tenant: str | None = None) -> list[Finding]:
    """Prompt-injection attempts in `text`, which came from `where` ("brief", "retrieved[0]",
    "copy[1].headline", "rationale", ...). With `tenant`, asking about another tenant's
    brand's plans or data ("what were Globex's budgets at Gamma?") is flagged too. Findings
    are never obeyed; they are reported."""
    if not isinstance(text, str) or not isinstance(where, str):
        raise GovernanceInputError("detect_injection takes the text and its where-label as str")
    trusted = _where_trusted(where)
    norm, index = normalize(text)
    spans: list[tuple[int, int, str]] = []
    for rule in RULES:
        if trusted and not rule.trusted_too:
            continue
        for m in rule.pattern.finditer(norm):
            if m.end() == m.start() or (rule.negatable and _negated(norm, m.start())):
                continue
            start, end = index[m.start()], index[m.end() - 1] + 1
            spans.append((start, end, rule.name))
    other = _other_brands_pattern(tenant) if tenant else None
    if other is not None:
        for m in other.finditer(norm):
            start, end = index[m.start()], index[m.end() - 1] + 1
            spans.append((start, end, "another tenant's data"))
    spans += [(s, e, f"hidden text: {what}") for s, e, what in _hidden_characters(text)]
    # One finding per stretch of text, naming every rule that matched in it.
    merged: list[tuple[int, int, list[str]]] = []
    for start, end, name in sorted(spans):
        if merged and start < merged[-1][1]:
            last_start, last_end, names = merged[-1]
            merged[-1] = (last_start, max(last_end, end), names + [name])
        else:
            merged.append((start, end, [name]))
    findings = [
        Finding(
            type=INJECTION,
            where=where,
            start=start,
            end=end,
            text=text[start:end],
            severity="block",
            action=f"not obeyed ({'; '.join(dict.fromkeys(names))})",
        )
        for start, end, names in merged
    ]
    return findings
