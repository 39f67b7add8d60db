"""PII scanning and redaction on Microsoft Presidio's pattern recognizers, tuned for retail text.

The analyzer runs with Presidio's no-op NLP engine (no spaCy model, nothing downloaded) and a
registry of Presidio recognizers subclassed for retail media: product codes, order, tracking and
campaign numbers, prices, dates, store and zip numbers and version strings are everywhere in
briefs, reports and support notes, and must not be flagged. Every candidate is checked:

- CREDIT_CARD: issuer prefix and length, Luhn (Presidio's), consistent digit grouping; a bare
  14-digit number with a valid GS1 check digit is a GTIN, not a Diners card, unless card words
  label it; 13-digit numbers are EAN-13 (legacy 13-digit Visa is no longer issued).
- SSN: written as one ("SSN 219-09-9999", "social security number ..."), a 3-2-4 number is
  flagged even when validators reject it as a published sample, a placeholder or a 9xx area
  (ITINs are taxpayer ids too): in a governance check a false alarm on a sample number is
  cheaper than a miss; only numbers the SSA never issues (area 000 or 666, group 00, serial
  0000) are not. Without those words, issued ranges only (no area 000, 666 or 9xx, no group
  00, no serial 0000, Presidio's list of published sample numbers); nine bare digits only
  when labelled as an SSN.
- PHONE: valid numbers per `phonenumbers`, grouped the way the region writes them (US by
  default, any region with a leading +); a bare digit run only when labelled as a phone number.
- IP_ADDRESS: valid IPv4/IPv6 (CIDR allowed); a dotted quad labelled as a version, build,
  release, section or rule number is not an address.
- EMAIL: a valid public suffix, from the suffix list bundled with tldextract (never fetched).
- IBAN: Presidio's recognizer (country format and mod-97 checksum).
- DATE_OF_BIRTH: a real date labelled as a birth date (DOB, born, birth date).

Text is read without its default-ignorable code points (`tools.governance.unicode`: a soft
hyphen or a combining grapheme joiner inside an email does not hide it); findings point into
the original text and cover the hidden characters inside them. A placeholder an earlier
redaction left (`<EMAIL>`, `<PHONE>`, ...) is reported as what it replaced, so a text redacted
on entry (a brief: `graph.state`) still shows governance what it held; redacting it again
changes nothing.

A number's "label" is the few words right before it in the same clause, up to the previous
number: in "order 4155550123" the label is "order", in "order 12345, call 2125550147" it is
"call". Labels naming an identifier (order, SKU, tracking, store, ...) veto a match unless they
also name the PII type.
"""

from __future__ import annotations

import calendar
import ipaddress
import re
from datetime import date
from functools import lru_cache
from typing import Any

import tldextract
from presidio_analyzer import (
    AnalyzerEngine,
    EntityRecognizer,
    Pattern,
    PatternRecognizer,
    RecognizerRegistry,
    RecognizerResult,
)
from presidio_analyzer.nlp_engine import NlpArtifacts, NoOpNlpEngine
from presidio_analyzer.predefined_recognizers import (
    CreditCardRecognizer,
    EmailRecognizer,
    IbanRecognizer,
    IpRecognizer,
    PhoneRecognizer,
    UsSsnRecognizer,
)
from pydantic import BaseModel, Field

from tools.governance.errors import GovernanceInputError
from tools.governance.unicode import drop_ignorable, original_span
from tools.rmis import gtin_check_digit

PII_TYPES: tuple[str, ...] = (
    "EMAIL",
    "PHONE",
    "SSN",
    "CREDIT_CARD",
    "IP_ADDRESS",
    "IBAN",
    "DATE_OF_BIRTH",
)
MAX_TEXT_CHARS = 1_000_000


class PiiFinding(BaseModel):
    type: str = Field(description="one of PII_TYPES")
    start: int = Field(ge=0)
    end: int = Field(ge=0)
    text: str
    score: float = Field(ge=0, le=1)


class PiiScan(BaseModel):
    findings: list[PiiFinding] = Field(default_factory=list)
    redacted: str


# --- labels: the words right before a value ---------------------------------------------------

_CLAUSE_END = re.compile(r"[\n;!?]|\.\s|:\s*\n")
_LABEL_TOKEN = re.compile(r"[a-z][a-z0-9_'.]*[a-z0-9]|[a-z]|\d[\w./-]*", re.IGNORECASE)

# Words that name a business identifier: a number they label is that identifier.
# fmt: off
ID_WORDS = frozenset({
    "order", "orders", "ord", "po", "invoice", "inv", "sku", "skus", "upc", "upcs", "ean", "gtin",
    "gtins", "item", "items", "tracking", "shipment", "awb", "fedex", "ups", "usps", "dhl",
    "store", "stores", "campaign", "campaigns", "case", "ticket", "ref", "reference", "rma",
    "model", "part", "serial", "lot", "batch", "transaction", "receipt", "register", "terminal",
    "barcode", "asin", "loyalty", "seed", "id", "ids", "zip",
})
PHONE_WORDS = frozenset({
    "phone", "phones", "tel", "telephone", "call", "calls", "called", "caller", "callback",
    "cell", "mobile", "text", "sms", "fax", "contact", "reach", "dial", "voicemail", "whatsapp",
})
SSN_WORDS = frozenset({"ssn", "ssns", "social", "security", "taxpayer"})
CARD_WORDS = frozenset({
    "card", "cards", "visa", "mastercard", "mc", "amex", "discover", "jcb", "diners", "credit",
    "debit", "cc", "paid", "pay", "payment", "charged", "chargeback",
})
VERSION_WORDS = frozenset({
    "version", "versions", "ver", "v", "build", "release", "releases", "rev", "revision",
    "firmware", "sdk", "api", "app", "section", "sections", "clause", "rule", "rules", "chapter",
    "step", "line", "lines", "article", "paragraph", "table", "figure", "fig", "schema", "spec",
    "patch", "update", "ios", "android", "windows", "macos", "template",
})
DOB_WORDS = frozenset({"dob", "d.o.b", "birth", "birthdate", "birthday", "born"})
# fmt: on


def label_words(text: str, start: int, max_words: int = 4) -> list[str]:
    """The words (lower case) right before `start`, nearest last: at most `max_words`, within
    the clause, stopping at the previous number."""
    window = text[max(0, start - 80) : start]
    ends = list(_CLAUSE_END.finditer(window))
    if ends:
        window = window[ends[-1].end() :]
    words: list[str] = []
    for token in reversed(_LABEL_TOKEN.findall(window)):
        if token[0].isdigit():
            break
        words.append(token.lower().rstrip("."))
        if len(words) == max_words:
            break
    return words[::-1]


def _labelled(text: str, start: int, words: frozenset[str], max_words: int = 4) -> bool:
    return any(w in words for w in label_words(text, start, max_words))


# --- recognizers ------------------------------------------------------------------------------


class _Checked:
    """Mixin: Presidio finds candidates; `keep` decides with the whole text at hand, and may
    move the span (e.g. to drop a phone extension)."""

    score: float = 0.8

    def keep(self, text: str, result: RecognizerResult) -> RecognizerResult | None:
        return result

    def analyze(
        self,
        text: str,
        entities: list[str],
        nlp_artifacts: NlpArtifacts | None = None,
        **kwargs: Any,
    ) -> list[RecognizerResult]:
        found = super().analyze(text, entities, nlp_artifacts, **kwargs)  # type: ignore[misc]
        out = []
        for r in found:
            kept = self.keep(text, r)
            if kept is not None:
                kept.score = self.score
                out.append(kept)
        return out


class RetailEmailRecognizer(_Checked, EmailRecognizer):
    """Presidio's email pattern; the domain must end in a public suffix. The suffix list is
    the snapshot bundled with tldextract: Presidio's default check would download it."""

    score = 0.9

    def __init__(self) -> None:
        super().__init__(supported_entity="EMAIL")

    def validate_result(self, pattern_text: str) -> bool:
        return offline_suffix_check(pattern_text)


@lru_cache(maxsize=1)
def _tld_extractor() -> Any:
    # No cache directory and no URLs: the bundled snapshot, never the network.
    return tldextract.TLDExtract(cache_dir=None, suffix_list_urls=(), fallback_to_snapshot=True)


def offline_suffix_check(address: str) -> bool:
    """Whether the part after @ is a host under a public suffix (example.com, acme.co.uk)."""
    return _tld_extractor()(address.rsplit("@", 1)[-1]).fqdn != ""


class RetailPhoneRecognizer(_Checked, PhoneRecognizer):
    score = 0.75
    _EXTENSION = re.compile(r"[\s,;]*(?:ext\.?|extension|x|#)\s*\d{1,6}$", re.IGNORECASE)

    def __init__(self, regions: tuple[str, ...] = ("US",)) -> None:
        # STRICT_GROUPING: a valid number in its region, written in that region's digit groups
        # (so "20250603-17" or "212-5550-147" are not phone numbers).
        super().__init__(supported_entity="PHONE", supported_regions=regions, leniency=2)

    def keep(self, text: str, result: RecognizerResult) -> RecognizerResult | None:
        span = text[result.start : result.end]
        ext = self._EXTENSION.search(span)
        if ext:
            result.end = result.start + ext.start()
            span = span[: ext.start()]
        # The matcher may take one parenthesis of "Tom (646-555-0172)" into the span.
        if span.startswith("(") and ")" not in span:
            result.start += 1
            span = span[1:]
        # A phone word anywhere in the clause labels the number; an identifier word vetoes
        # it only as its nearest label ("order number: ...", "PO ...").
        phone_label = _labelled(text, result.start, PHONE_WORDS, max_words=6)
        if _labelled(text, result.start, ID_WORDS, max_words=2) and not phone_label:
            return None
        return result if phone_label or not span.isdigit() else None


class RetailSsnRecognizer(_Checked, UsSsnRecognizer):
    score = 0.85
    PATTERNS = [
        Pattern("SSN (grouped)", r"(?<![\w-])\d{3}([- ])\d{2}\1\d{4}(?![\w-])", 0.5),
        Pattern("SSN (bare)", r"(?<![\w-])\d{9}(?![\w-])", 0.05),
    ]

    def __init__(self) -> None:
        super().__init__(patterns=list(self.PATTERNS), supported_entity="SSN")

    def invalidate_result(self, pattern_text: str) -> bool:
        return False  # decided in `keep`, where the words before the number are known

    @staticmethod
    def unissuable(digits: str) -> bool:
        """Numbers the SSA never issues to anyone: area 000 or 666, group 00, serial 0000."""
        return digits[:3] in ("000", "666") or digits[3:5] == "00" or digits[5:] == "0000"

    def not_a_real_ssn(self, span: str) -> bool:
        """Presidio's validators (those rules, one repeated digit, published sample numbers)
        and area numbers 900-999 (ITINs, the advertising range or unused)."""
        return bool(super().invalidate_result(span)) or re.sub(r"\D", "", span)[0] == "9"

    def keep(self, text: str, result: RecognizerResult) -> RecognizerResult | None:
        span = text[result.start : result.end]
        words = label_words(text, result.start)
        if any(w in SSN_WORDS for w in words):
            # Written as an SSN: flagged even as a sample number, an ITIN or a placeholder;
            # only a number no one can be issued is not.
            return None if self.unissuable(re.sub(r"\D", "", span)) else result
        if span.isdigit() or any(w in ID_WORDS for w in words) or self.not_a_real_ssn(span):
            return None
        return result


# (prefix range, allowed lengths) of the card networks in use; 13-digit Visa is left out on
# purpose (it is no longer issued and every EAN-13 from a German prefix 400-440 would match).
_CARD_RANGES: tuple[tuple[int, int, frozenset[int]], ...] = (
    (4, 4, frozenset({16, 19})),  # Visa
    (51, 55, frozenset({16})),  # Mastercard
    (2221, 2720, frozenset({16})),  # Mastercard 2-series
    (34, 34, frozenset({15})),  # American Express
    (37, 37, frozenset({15})),
    (6011, 6011, frozenset({16, 17, 18, 19})),  # Discover
    (644, 649, frozenset({16, 17, 18, 19})),
    (65, 65, frozenset({16, 17, 18, 19})),
    (3528, 3589, frozenset({16, 17, 18, 19})),  # JCB
    (300, 305, frozenset({14, 15, 16, 17, 18, 19})),  # Diners Club
    (36, 36, frozenset({14, 15, 16, 17, 18, 19})),
    (38, 39, frozenset({16, 17, 18, 19})),
    (62, 62, frozenset({16, 17, 18, 19})),  # UnionPay
)
# How card numbers are printed when they are grouped.
_CARD_GROUPS = frozenset({(4, 4, 4, 4), (4, 6, 5), (4, 6, 4), (4, 4, 4, 4, 3), (4, 4, 4, 2)})


def card_network_ok(digits: str) -> bool:
    for lo, hi, lengths in _CARD_RANGES:
        width = len(str(lo))
        if lo <= int(digits[:width]) <= hi and len(digits) in lengths:
            return True
    return False


def is_gtin(digits: str) -> bool:
    """A UPC-A, EAN-13 or GTIN-14 with a valid GS1 check digit."""
    return len(digits) in (12, 13, 14) and gtin_check_digit(digits[:-1]) == int(digits[-1])


class RetailCardRecognizer(_Checked, CreditCardRecognizer):
    score = 0.95
    PATTERNS = [
        Pattern("card number", r"(?<![\w-])(?:\d[ -]?){12,18}\d(?![\w-]|[ -]\d)", 0.3),
    ]

    def __init__(self) -> None:
        super().__init__(patterns=list(self.PATTERNS), supported_entity="CREDIT_CARD")

    def invalidate_result(self, pattern_text: str) -> bool:
        digits = re.sub(r"\D", "", pattern_text)
        separators = set(re.findall(r"[ -]", pattern_text))
        if len(separators) > 1 or not card_network_ok(digits):
            return True
        if separators:
            groups = tuple(len(g) for g in re.split(r"[ -]", pattern_text))
            if groups not in _CARD_GROUPS:
                return True
        return False

    def keep(self, text: str, result: RecognizerResult) -> RecognizerResult | None:
        span = text[result.start : result.end]
        words = label_words(text, result.start)
        card_label = any(w in CARD_WORDS for w in words)
        if any(w in ID_WORDS for w in words) and not card_label:
            return None
        if span.isdigit() and is_gtin(span) and not card_label:
            return None
        return result


_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"


class RetailIpRecognizer(_Checked, IpRecognizer):
    score = 0.8

    def __init__(self) -> None:
        ipv6 = [p for p in IpRecognizer.PATTERNS if p.name == "IPv6"]
        ipv4 = Pattern(
            "IPv4",
            rf"(?<![\w.]){_OCTET}(?:\.{_OCTET}){{3}}(?:/(?:3[0-2]|[12]?\d))?(?![\w]|\.\d)",
            0.6,
        )
        super().__init__(patterns=[ipv4, *ipv6], supported_entity="IP_ADDRESS")

    def invalidate_result(self, pattern_text: str) -> bool:
        if pattern_text.strip(":") == "":
            return True
        try:
            ipaddress.ip_interface(pattern_text)
        except ValueError:
            return True
        return False

    def keep(self, text: str, result: RecognizerResult) -> RecognizerResult | None:
        if _labelled(text, result.start, VERSION_WORDS, max_words=2):
            return None
        return result


_MONTH = (
    r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|"
    r"sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?"
)
_MONTHS = {m[:3].lower(): i for i, m in enumerate(calendar.month_name) if m}


def parse_date(text: str) -> date | None:
    """A calendar date written as m/d/yyyy, m-d-yy, yyyy-mm-dd, 'March 3, 1979' or
    '3 March 1979', or None."""
    t = text.strip().lower().replace(",", "")
    try:
        if m := re.fullmatch(r"(\d{4})-(\d{1,2})-(\d{1,2})", t):
            return date(int(m[1]), int(m[2]), int(m[3]))
        if m := re.fullmatch(r"(\d{1,2})[/-](\d{1,2})[/-](\d{2}|\d{4})", t):
            year = int(m[3]) + (1900 if len(m[3]) == 2 else 0)
            return date(year, int(m[1]), int(m[2]))
        if m := re.fullmatch(r"([a-z]+)\.? (\d{1,2}) (\d{4})", t):
            return date(int(m[3]), _MONTHS[m[1][:3]], int(m[2]))
        if m := re.fullmatch(r"(\d{1,2}) ([a-z]+)\.? (\d{4})", t):
            return date(int(m[3]), _MONTHS[m[2][:3]], int(m[1]))
    except (ValueError, KeyError):
        return None
    return None


class DateOfBirthRecognizer(_Checked, PatternRecognizer):
    score = 0.85
    PATTERNS = [
        Pattern("numeric date", r"(?<![\w/-])\d{1,2}[/-]\d{1,2}[/-](?:\d{4}|\d{2})(?![\w/-])", 0.3),
        Pattern("ISO date", r"(?<![\w/-])\d{4}-\d{2}-\d{2}(?![\w/-])", 0.3),
        Pattern("month name date", rf"\b{_MONTH} \d{{1,2}},? \d{{4}}\b", 0.3),
        Pattern("day month date", rf"\b\d{{1,2}} {_MONTH},? \d{{4}}\b", 0.3),
    ]

    def __init__(self) -> None:
        super().__init__(
            supported_entity="DATE_OF_BIRTH", patterns=list(self.PATTERNS), name="DateOfBirth"
        )

    def invalidate_result(self, pattern_text: str) -> bool:
        parsed = parse_date(pattern_text)
        return parsed is None or parsed > date.today()

    def keep(self, text: str, result: RecognizerResult) -> RecognizerResult | None:
        return result if _labelled(text, result.start, DOB_WORDS) else None


class RetailIbanRecognizer(_Checked, IbanRecognizer):
    score = 1.0

    def __init__(self) -> None:
        super().__init__(supported_entity="IBAN")

    def keep(self, text: str, result: RecognizerResult) -> RecognizerResult | None:
        # Presidio's IBAN pattern may take trailing spaces into the span.
        while result.end > result.start and text[result.end - 1].isspace():
            result.end -= 1
        return result


# --- the engine -------------------------------------------------------------------------------


def no_op_nlp_engine() -> NoOpNlpEngine:
    """Presidio's NLP engine that loads no model: pattern recognizers only."""
    engine = NoOpNlpEngine(models=[{"lang_code": "en", "model_name": "no_op"}])
    engine.load()
    return engine


@lru_cache(maxsize=1)
def retail_analyzer() -> AnalyzerEngine:
    recognizers: list[EntityRecognizer] = [
        RetailEmailRecognizer(),
        RetailPhoneRecognizer(),
        RetailSsnRecognizer(),
        RetailCardRecognizer(),
        RetailIpRecognizer(),
        RetailIbanRecognizer(),
        DateOfBirthRecognizer(),
    ]
    registry = RecognizerRegistry(recognizers=recognizers, supported_languages=["en"])
    return AnalyzerEngine(registry=registry, nlp_engine=no_op_nlp_engine())


def _non_overlapping(results: list[RecognizerResult]) -> list[RecognizerResult]:
    """Where spans overlap keep the surer, then the longer one (an email that contains digits
    stays an email)."""
    kept: list[RecognizerResult] = []
    for r in sorted(results, key=lambda r: (-r.score, -(r.end - r.start), r.start)):
        if all(r.end <= k.start or r.start >= k.end for k in kept):
            kept.append(r)
    return sorted(kept, key=lambda r: r.start)


def _check_text(text: object) -> str:
    if not isinstance(text, str):
        raise GovernanceInputError(f"expected text, got {type(text).__name__}")
    if len(text) > MAX_TEXT_CHARS:
        raise GovernanceInputError(
            f"text of {len(text):,} characters is too long to scan; split it into parts of at "
            f"most {MAX_TEXT_CHARS:,}",
            chars=len(text),
        )
    return text


_PLACEHOLDER = re.compile(r"<(" + "|".join(PII_TYPES) + r")>")


def _placeholders(text: str) -> list[RecognizerResult]:
    """The `<TYPE>` placeholders an earlier redaction left, as findings of their type."""
    return [
        RecognizerResult(m.group(1), m.start(), m.end(), 1.0) for m in _PLACEHOLDER.finditer(text)
    ]


def find_pii(text: str) -> list[PiiFinding]:
    """PII in `text`, in order, without overlaps; read without default-ignorable code points,
    located in the original text."""
    text = _check_text(text)
    if not text.strip():
        return []
    visible, index = drop_ignorable(text)
    results = retail_analyzer().analyze(text=visible, language="en", entities=list(PII_TYPES))
    findings = []
    for r in _non_overlapping(results + _placeholders(visible)):
        start, end = original_span(index, r.start, r.end)
        findings.append(
            PiiFinding(
                type=r.entity_type,
                start=start,
                end=end,
                text=text[start:end],
                score=round(float(r.score), 3),
            )
        )
    return findings


def redact(text: str, findings: list[PiiFinding]) -> str:
    """`text` with each finding replaced by `<TYPE>`; findings must not overlap."""
    out = []
    pos = 0
    for f in sorted(findings, key=lambda f: f.start):
        if f.start < pos or f.end > len(text):
            raise GovernanceInputError(
                f"finding {f.type} at {f.start}-{f.end} overlaps another or lies outside the text"
            )
        out += [text[pos : f.start], f"<{f.type}>"]
        pos = f.end
    out.append(text[pos:])
    return "".join(out)


def scan_pii(text: str) -> PiiScan:
    """Find PII in `text` and redact it."""
    findings = find_pii(text)
    return PiiScan(findings=findings, redacted=redact(text, findings))


def redact_pii(text: str) -> str:
    """`text` with its PII replaced by `<TYPE>` (what a brief is kept as: `graph.state`)."""
    return scan_pii(text).redacted
