"""`rmn`'s command tree: every command and sub-command answers --help with its own usage line
and docstring, and an unknown command is a usage error."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
import typer
from typer.core import TyperCommand, TyperGroup
from typer.testing import CliRunner

from cli.main import app

runner = CliRunner()

TOP_LEVEL = (
    "world",
    "harmonize",
    "parse",
    "plan",
    "resume",
    "threads",
    "show",
    "governance",
    "serve",
    "keys",
    "cleanroom",
    "rag",
    "train",
    "eval",
    "evaluate",
    "bench",
    "demo",
)


Command = TyperCommand | TyperGroup


def _walk(
    command: Command, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], Command]]:
    """Every command under `command` (itself first), with the words that invoke it."""
    yield path, command
    if isinstance(command, TyperGroup):
        for name, sub in command.commands.items():
            yield from _walk(sub, (*path, name))


COMMANDS = list(_walk(typer.main.get_command(app)))


def _flat(text: str) -> str:
    """Text with the help renderer's wrapping and box borders undone."""
    return " ".join(re.sub(r"[│╭╮╰╯─]", " ", text).split())


def test_every_top_level_command_is_registered_and_listed() -> None:
    registered = {path[0] for path, _ in COMMANDS if len(path) == 1}
    assert set(TOP_LEVEL) <= registered
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    listed = re.findall(r"^│ (\S+)", result.output, flags=re.MULTILINE)
    assert set(registered) <= set(listed)


@pytest.mark.parametrize(
    ("path", "command"), COMMANDS, ids=[" ".join(p) or "rmn" for p, _ in COMMANDS]
)
def test_help_shows_the_commands_own_usage_and_docstring(
    path: tuple[str, ...], command: Command
) -> None:
    result = runner.invoke(app, [*path, "--help"])
    assert result.exit_code == 0, result.output
    out = _flat(result.output)
    usage = " ".join(["Usage: rmn", *path])
    assert f"{usage} [OPTIONS]" in out, out[:200]
    assert command.help, f"rmn {' '.join(path)} has no docstring"
    first_paragraph = command.help.strip().split("\n\n")[0]
    assert _flat(first_paragraph) in out
    if isinstance(command, TyperGroup):
        assert f"{usage} [OPTIONS] COMMAND [ARGS]..." in out
        for name in command.commands:
            assert re.search(rf"│ {re.escape(name)} ", result.output), name


def test_unknown_command_is_a_usage_error() -> None:
    result = runner.invoke(app, ["no-such-command"])
    assert result.exit_code == 2


def test_e2e_bench_plans_each_brief_to_its_approval_question() -> None:
    """`rmn bench e2e` without --data-dir builds its simulated market first (a bare temporary
    folder is no market: every brief stopped at the clean room before this was fixed)."""
    from cli.e2e_bench import run_e2e_bench
    from tools.world import WorldSpec

    out = run_e2e_bench(1, "none", None, world=WorldSpec(seed=7, days=60, events=50_000))
    assert out["approval_ready"] == 1 and out["warmup_stopped_at"] == "approval", out["runs"]
    assert [r["stopped_at"] for r in out["runs"]] == ["approval"]
    assert out["p50_s"] is not None and out["per_node_median_s"]["optimizer"] >= 0
    # Without a model, everything an approver reads is the templates' and the rules': the
    # bench counts who wrote each kind of text (outputs say which path produced them).
    run = out["runs"][0]
    assert out["written_by"] == {
        "brief": {"rules": 1},
        "copy": {"fallback": len(run["copy_paths"])},
        "rationale": {"template": len(run["rationale_paths"])},
        "reflection": {"template": 1},
    }
    assert set(run["rationale_paths"]) == {"allocation", "experiment"}
