"""`rmn governance` commands: scan text for PII (and injection attempts), and the benchmark
behind `rmn bench governance`."""

from __future__ import annotations

from typing import Any

import typer

from cli.common import JsonOption, emit, user_errors

app = typer.Typer(
    help="Governance: PII scanning and redaction, prompt-injection checks.",
    no_args_is_help=True,
)


@app.callback()
def governance() -> None:
    """Governance: PII scanning and redaction, prompt-injection checks."""


def _read_stdin() -> str:
    from tools.governance import GovernanceInputError

    stream = typer.get_text_stream("stdin")
    if stream.isatty():
        raise GovernanceInputError(
            "pipe the text to scan on stdin, e.g. echo 'call (312) 555-0188' | rmn governance scan"
        )
    try:
        return stream.read()
    except UnicodeDecodeError as err:
        raise GovernanceInputError(f"stdin is not UTF-8 text: {err.reason}") from None


def _human_scan(result: dict[str, Any]) -> str:
    findings = result["findings"]
    lines = [f"{len(findings)} finding(s)"]
    lines += [f"  {f['type']:<16} {f['start']:>6}-{f['end']:<6} {f['text']!r}" for f in findings]
    lines += ["", "redacted:", result["redacted"]]
    return "\n".join(lines)


@app.command()
def scan(
    injection: bool = typer.Option(
        False, "--injection", help="Also flag prompt-injection attempts (type PROMPT_INJECTION)."
    ),
    where: str = typer.Option(
        "brief",
        "--where",
        help="Where the text comes from, for --injection: brief, retrieved[0], copy[0].body, ...",
    ),
    as_json: bool = JsonOption,
) -> None:
    """Read text on stdin; list the PII in it (EMAIL, PHONE, SSN, CREDIT_CARD, IP_ADDRESS, IBAN,
    DATE_OF_BIRTH) and print it redacted."""
    with user_errors(as_json):
        from tools.governance import detect_injection, scan_pii

        text = _read_stdin()
        result = scan_pii(text)
        findings = [f.model_dump(include={"type", "start", "end", "text"}) for f in result.findings]
        if injection:
            findings += [
                {"type": f.type, "start": f.start, "end": f.end, "text": f.text}
                for f in detect_injection(text, where)
            ]
            findings.sort(key=lambda f: (f["start"], f["end"]))
        emit({"findings": findings, "redacted": result.redacted}, as_json, _human_scan)


def _pct(x: float) -> str:
    return f"{100 * x:5.1f}%"


def _human_bench(r: dict[str, Any]) -> str:
    lines = [f"analyzer build {r['analyzer_build_s']:.2f} s", "", "PII (overlap match)"]
    for split, ev in r["pii"].items():
        lines.append(f"  {split}: {ev['texts']} texts, {sum(ev['labelled_spans'].values())} spans")
        for name in ("ours", "ours_common", "presidio_default", "presidio_threshold_0.5"):
            o = ev[name]["overlap"]["overall"]
            x = ev[name]["exact"]["overall"]
            lines.append(
                f"    {name:<24} precision {_pct(o['precision'])} recall {_pct(o['recall'])}"
                f"  (exact {_pct(x['precision'])} / {_pct(x['recall'])})"
            )
    lines += ["", "prompt injection (per text)"]
    for split, ev in r["injection"].items():
        o = ev["overall"]
        lines.append(
            f"  {split}: {ev['texts']} texts, {ev['injections']} attempts: "
            f"precision {_pct(o['precision'])} recall {_pct(o['recall'])}"
        )
    return "\n".join(lines)


def bench(as_json: bool = JsonOption) -> None:
    """Precision and recall of the PII scanner (against Presidio's defaults) and of the
    prompt-injection detector, on the bundled labelled sets."""
    with user_errors(as_json):
        from tools.governance import bench_governance

        emit(bench_governance(), as_json, _human_bench)
