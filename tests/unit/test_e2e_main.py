"""`rmn bench e2e --main-ref REF`: REF's own e2e bench, run in a temporary worktree of REF after
the current code's briefs (`cli.e2e_bench.measure_main`, `tools.main_ref`). An unknown ref fails
before anything is timed and leaves no worktree; main's command, working directory and
environment are its own; a malformed answer is a clear error; the human output puts main's
figures next to the current ones. No model is loaded and no bench is run here: the runner is a
fake or a probe."""

from __future__ import annotations

import ast
import json
import os
import signal
import statistics
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from cli import e2e_bench
from cli.e2e_bench import (
    BRIEFS,
    MAIN_CLI,
    MAIN_FIELDS,
    _human,
    _summary,
    main_argv,
    measure_main,
    parse_main,
)
from cli.main import app
from tools import main_ref
from tools.main_ref import MainRefError, resolve_ref

ROOT = Path(__file__).resolve().parents[2]
MAIN = "6c07a30"


def _main_known() -> bool:
    try:
        resolve_ref(MAIN, ROOT)
    except MainRefError:
        return False
    return True


needs_main = pytest.mark.skipif(not _main_known(), reason=f"needs git and commit {MAIN}")


def _worktrees() -> bytes:
    return subprocess.run(
        ["git", "-C", str(ROOT), "worktree", "list"], capture_output=True, check=True
    ).stdout


def _current(briefs: int = 1) -> dict[str, Any]:
    """A current-code result as `run_e2e_bench` makes it (its `_summary`), without a model."""
    runs = [
        {
            "brief": BRIEFS[i % len(BRIEFS)],
            "seconds": 10.0 + i,
            "stopped_at": "approval",
            "confirmed_brief": False,
            "parsed_by": "model",
            "copy_paths": ["llm", "llm"],
            "creative_s_per_variant": 1.5,
            "nodes": {"parse": 2.0 + i, "clean_room": 0.5, "creative": 3.0},
        }
        for i in range(briefs)
    ]
    return _summary(runs) | {
        "model": "smollm2",
        "briefs": briefs,
        "warmup_seconds": 30.0,
        "warmup_stopped_at": "approval",
        "fast_forward": True,
        "decode_path": "fused",
        "machine": {"cores": 2},
    }


def _old(briefs: int = 1, **change: Any) -> dict[str, Any]:
    """What 6c07a30's `rmn bench e2e --json` prints (its `run_e2e_bench`'s keys)."""
    runs = [
        {
            "brief": BRIEFS[i % len(BRIEFS)],
            "seconds": 25.0 + i,
            "stopped_at": "approval",
            "confirmed_brief": False,
            "parsed_by": "model",
            "copy_paths": ["llm", "fallback"],
            "nodes": {"parse": 4.0 + i, "creative": 9.5, "reflect": 2.25},
        }
        for i in range(briefs)
    ]
    out = {
        "model": "smollm2",
        "briefs": briefs,
        "warmup_seconds": 80.0,
        "warmup_stopped_at": "approval",
        "approval_ready": briefs,
        "p50_s": statistics.median(r["seconds"] for r in runs),
        "p95_s": 25.0 + 0.95 * (briefs - 1),
        "per_node_median_s": {
            k: statistics.median(r["nodes"][k] for r in runs) for k in runs[0]["nodes"]
        },
        "confirmed_briefs": 0,
        "target_p50_s": 20.0,
        "target_met": False,
        "runs": runs,
    }
    return out | change


def _fake_checkout(tree: Path, commit: str = "f" * 40) -> Any:
    @contextmanager
    def fake(ref: str, root: Path = ROOT) -> Iterator[tuple[Path, str]]:
        yield tree, commit

    return fake


def test_the_fields_compared_are_in_the_old_commands_output() -> None:
    """6c07a30's bench returns every field `parse_main` requires, and times the same briefs."""
    if not _main_known():
        pytest.skip(f"needs git and commit {MAIN}")
    old = subprocess.run(
        ["git", "-C", str(ROOT), "show", f"{MAIN}:cli/e2e_bench.py"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    tree = ast.parse(old)

    def returned(fn: ast.FunctionDef) -> set[str]:  # the keys of the dict it returns
        (ret,) = [n for n in fn.body if isinstance(n, ast.Return)]
        assert isinstance(ret.value, ast.Dict)
        return {k.value for k in ret.value.keys if isinstance(k, ast.Constant)}

    (bench,) = [
        n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "run_e2e_bench"
    ]
    (plan,) = [n for n in bench.body if isinstance(n, ast.FunctionDef) and n.name == "plan"]
    keys = returned(bench)
    assert set(MAIN_FIELDS) <= keys, set(MAIN_FIELDS) - keys
    # The fake old output below is the old command's shape.
    assert set(_old()) == keys and set(_old()["runs"][0]) == returned(plan)
    briefs = next(
        ast.literal_eval(n.value)
        for n in tree.body
        if isinstance(n, ast.Assign) and getattr(n.targets[0], "id", None) == "BRIEFS"
    )
    assert briefs == BRIEFS
    assert "BRIEFS[i % len(BRIEFS)]" in old  # it has no option to choose them


def test_an_unknown_ref_fails_before_timing_and_leaves_no_worktree(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(e2e_bench, "run_e2e_bench", lambda *a, **k: pytest.fail("timed"))
    before = _worktrees()
    args = ["bench", "e2e", "--briefs", "1", "--model", "none", "--main-ref", "no-such-ref-4f2a"]
    out = CliRunner().invoke(app, [*args, "--json"])
    assert out.exit_code == 2, out.output
    error = json.loads(out.stdout)["error"]
    assert (
        error["type"] == "main_ref_error" and "unknown ref 'no-such-ref-4f2a'" in error["message"]
    )
    with pytest.raises(MainRefError, match="unknown ref"), main_ref.checkout("no-such-ref-4f2a"):
        pytest.fail("checked out an unknown ref")
    assert _worktrees() == before


@needs_main
def test_main_runs_its_own_bench_in_its_worktree_offline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real checkout and `run_in`, with main's CLI swapped for a probe that reports what
    it was given: the old command's arguments, the worktree as cwd and PYTHONPATH (its own
    `cli` imported), offline, no current-code locations, a cache sharing only `models/`."""
    models = tmp_path / "cache" / "models"
    models.mkdir(parents=True)
    monkeypatch.setenv("RMN_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("RMN_ADAPTERS_DIR", "/current/adapters")
    monkeypatch.setenv("RMN_DATA_DIR", "/current/data")
    probe = (
        "import importlib.util, json, os, subprocess, sys\n"
        "print('a library line on stdout')\n"
        "print('main: probing', file=sys.stderr)\n"
        "cache = os.environ['RMN_CACHE_DIR']\n"
        "out = json.loads(os.environ['OLD'])\n"
        "out['probe'] = {\n"
        "  'argv': sys.argv[1:], 'cwd': os.getcwd(), 'python': sys.executable,\n"
        "  'env': {k: os.environ.get(k) for k in ('PYTHONPATH', 'HF_HUB_OFFLINE',\n"
        "          'TRANSFORMERS_OFFLINE', 'RMN_ADAPTERS_DIR', 'RMN_DATA_DIR')},\n"
        "  'cache': cache, 'cache_has': sorted(os.listdir(cache)),\n"
        "  'models': os.path.realpath(os.path.join(cache, 'models')),\n"
        "  'cli_from': importlib.util.find_spec('cli.e2e_bench').origin,\n"
        "  'head': subprocess.run(['git', 'rev-parse', 'HEAD'], capture_output=True,\n"
        "                         text=True).stdout.strip(),\n"
        "}\n"
        "print(json.dumps(out))\n"
    )
    monkeypatch.setenv("OLD", json.dumps(_old(2)))
    given: list[tuple[Path, list[str], str | None]] = []

    def runner(tree: Path, argv: list[str], stdin: str | None, **kw: Any) -> str:
        given.append((tree, list(argv), stdin))
        assert argv[:3] == [sys.executable, "-c", MAIN_CLI]
        return main_ref.run_in(tree, [argv[0], "-c", probe, *argv[3:]], stdin, **kw)

    said: list[str] = []
    before = _worktrees()
    main, source = measure_main(
        MAIN, _current(2), data_dir=None, root=ROOT, runner=runner, log=said.append
    )
    assert _worktrees() == before  # the worktree is gone
    ((tree, argv, stdin),) = given
    assert not tree.exists() and stdin is None
    assert argv == main_argv(2, "smollm2")
    probe_said = main.pop("probe")
    assert main == _old(2)  # main's JSON as it printed it, the library line before it skipped
    assert probe_said["argv"] == ["bench", "e2e", "--briefs", "2", "--model", "smollm2", "--json"]
    assert Path(probe_said["cwd"]) == tree and probe_said["python"] == sys.executable
    assert probe_said["head"] == source["commit"] == resolve_ref(MAIN, ROOT)
    assert probe_said["env"] == {
        "PYTHONPATH": str(tree),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "RMN_ADAPTERS_DIR": None,
        "RMN_DATA_DIR": None,
    }
    assert Path(probe_said["cli_from"]) == tree / "cli" / "e2e_bench.py"  # its code, not ours
    assert probe_said["cache"] != str(tmp_path / "cache") and probe_said["cache_has"] == ["models"]
    assert Path(probe_said["models"]) == models.resolve()
    assert said[0].startswith(f"main: {MAIN} (") and said[1:] == ["main: probing"]
    assert source["same_briefs"] is True and "the same 2 brief(s)" in source["briefs"]
    assert source["ref"] == MAIN and "--briefs 2 --model smollm2 --json" in source["ran"]


@needs_main
def test_a_failing_main_leaves_no_worktree_and_says_why() -> None:
    before = _worktrees()

    def runner(tree: Path, argv: list[str], stdin: str | None, **kw: Any) -> str:
        error = {"error": {"type": "error", "message": "old code gave up"}}
        script = f"import sys; print({json.dumps(error)!r}); sys.exit(2)"
        return main_ref.run_in(tree, [argv[0], "-c", script], stdin, **kw)

    with pytest.raises(MainRefError, match=r"main's e2e bench at 6c07a30 failed \(exit 2\)") as err:
        measure_main(MAIN, _current(), data_dir=None, root=ROOT, runner=runner)
    assert "old code gave up" in err.value.message  # its JSON error, from its stdout
    assert _worktrees() == before


@pytest.mark.parametrize(
    ("stdout", "says"),
    [
        ("", "printed nothing"),
        ("Traceback (most recent call last):\n", "printed no JSON"),
        ("[1, 2]\n", "list JSON, not an object"),
        ('{"error": {"message": "no such brand"}}\n', "failed: .*no such brand"),
        (json.dumps({"model": "smollm2", "briefs": 1}), "without approval_ready, p50_s"),
        (json.dumps(_old(p50_s="fast")), r"wrong type: \[\"p50_s='fast'\"\]"),
        (json.dumps(_old(per_node_median_s={"parse": None})), "per_node_median_s.parse=None"),
        (json.dumps(_old(approval_ready=True)), "approval_ready=True"),
        (json.dumps(_old(2)), "timed 2 briefs"),
        (json.dumps(_old(runs=[])), r"\(0 runs\), not 1"),
    ],
)
def test_a_malformed_old_output_is_a_clear_error(stdout: str, says: str) -> None:
    with pytest.raises(MainRefError, match=says):
        parse_main(stdout, 1)


def test_a_malformed_answer_fails_the_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(e2e_bench, "run_e2e_bench", lambda *a, **k: _current())
    monkeypatch.setattr(e2e_bench, "resolve_ref", lambda ref: "f" * 40)
    monkeypatch.setattr(e2e_bench, "checkout", _fake_checkout(tmp_path))
    monkeypatch.setattr(e2e_bench, "run_in", lambda *a, **k: "Segmentation fault\n")
    args = ["bench", "e2e", "--briefs", "1", "--main-ref", "old", "--json"]
    out = CliRunner().invoke(app, args)
    assert out.exit_code == 2, out.output
    error = json.loads(out.stdout)["error"]
    assert error["type"] == "main_ref_error" and "printed no JSON" in error["message"]


def test_other_briefs_are_said(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(e2e_bench, "checkout", _fake_checkout(tmp_path))
    old = _old()
    old["runs"][0]["brief"] = "Spend it all on Alpha"
    main, source = measure_main(
        "old", _current(), data_dir=tmp_path, runner=lambda *a, **k: json.dumps(old)
    )
    assert source["same_briefs"] is False and "NOT the same texts" in source["briefs"]
    assert f"planned on {tmp_path}, which main was not given" in source["market"]


def test_the_human_output_shows_both_columns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(e2e_bench, "run_e2e_bench", lambda *a, **k: _current(2))
    monkeypatch.setattr(e2e_bench, "resolve_ref", lambda ref: "f" * 40)
    monkeypatch.setattr(e2e_bench, "checkout", _fake_checkout(tmp_path, "abcdef" + "0" * 34))
    old = _old(2, p95_s=None)  # a figure main did not give stays out
    monkeypatch.setattr(e2e_bench, "run_in", lambda *a, **k: json.dumps(old))
    out = CliRunner().invoke(app, ["bench", "e2e", "--briefs", "2", "--main-ref", "old"])
    assert out.exit_code == 0, out.output
    lines = out.stdout.splitlines()
    cur = _current(2)

    def row(name: str) -> list[str]:
        n = len(name.split())
        (line,) = [x for x in lines if x.split()[:n] == name.split()]
        return line.split()[len(name.split()) :]

    assert row("current main") == []  # the header
    assert [x for x in lines if x.split() == ["current", "main"]]
    assert row("p50 s") == [f"{cur['p50_s']:.2f}", f"{old['p50_s']:.2f}"]
    assert row("p95 s") == [f"{cur['p95_s']:.2f}", "-"]
    assert row("parse") == ["2.50", "4.50"]
    assert row("creative") == ["3.00", "9.50"]
    assert row("clean_room") == ["0.50", "-"]  # timed by the current code only
    assert row("reflect") == ["-", "2.25"]  # timed by main only
    assert "main old (abcdef000000)" in out.stdout and "same briefs: True" in out.stdout
    assert "its target p50 20.0 s" in out.stdout
    lacks = next(x for x in lines if x.startswith("not in main's output"))
    for key in ("creative_s_per_variant_p50", "decode_path", "fast_forward", "machine"):
        assert key in lacks
    assert "clean_room, reflect" in out.stdout
    # Without --main-ref the output is what it was: one column.
    assert "main" not in _human(cur) and "  parse                 2.50" in _human(cur)


def test_the_json_holds_mains_output_and_its_source(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def current(briefs: int, model: str, *a: Any, **k: Any) -> dict[str, Any]:
        return _current(briefs) | {"model": model}

    monkeypatch.setattr(e2e_bench, "run_e2e_bench", current)
    monkeypatch.setattr(e2e_bench, "resolve_ref", lambda ref: "f" * 40)
    monkeypatch.setattr(e2e_bench, "checkout", _fake_checkout(tmp_path))
    seen: list[list[str]] = []

    def run_in(tree: Path, argv: list[str], stdin: str | None, **kw: Any) -> str:
        seen.append(list(argv))
        return json.dumps(_old())

    monkeypatch.setattr(e2e_bench, "run_in", run_in)
    args = ["bench", "e2e", "--briefs", "1", "--model", "tiny", "--main-ref", "old", "--json"]
    out = CliRunner().invoke(app, args)
    assert out.exit_code == 0, out.output
    result = json.loads(out.stdout)
    assert result["main"] == _old() and result["p50_s"] == _current()["p50_s"]
    assert result["model"] == "tiny"
    assert seen == [main_argv(1, "tiny")]  # the current run's briefs count and model
    source = result["main_source"]
    assert source["commit"] == "f" * 40 and source["ref"] == "old"
    assert "its own" in source["adapters"] and "HF_HUB_OFFLINE=1" in source["ran"]
    assert source["not_in_main_output"] == [
        "creative_s_per_variant_p50",
        "decode_path",
        "fast_forward",
        "machine",
        "written_by",
    ]
    assert source["not_in_main_runs"] == ["creative_s_per_variant"]
    assert source["nodes_only_current"] == ["clean_room"]
    assert source["nodes_only_main"] == ["reflect"]
    assert "20.0" in source["target"] and "15.0" in source["target"]
    # The current figures went to stderr before main ran: a stopped main does not lose them.
    assert "current: 1/1 briefs reached approval on tiny: p50 10.0 s" in out.stderr
    assert os.sep in source["ran"]  # the interpreter that ran it


def test_an_interrupted_run_interrupts_main_and_lets_it_clean_up(tmp_path: Path) -> None:
    """Stopping the bench (Ctrl-C) stops main too, with a SIGINT it can clean up on (its
    temporary market folder), not a kill, and leaves no process behind."""
    cleaned = tmp_path / "cleaned"
    child = (
        "import sys, time\n"
        "try:\n"
        "    print('main: started', file=sys.stderr, flush=True)\n"
        "    time.sleep(60)\n"
        "except KeyboardInterrupt:\n"
        f"    open({str(cleaned)!r}, 'w').write('yes')\n"
    )
    seen: list[str] = []

    def log(line: str) -> None:
        seen.append(line)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        main_ref.run_in(tmp_path, [sys.executable, "-c", child], log=log)
    assert seen == ["main: started"]
    assert cleaned.read_text() == "yes"
    # ... also when the bench runs as a background job, which ignores SIGINT and passes that
    # on (`make test &` failed here, main killed after 10 s without its clean-up)
    cleaned.unlink()
    seen.clear()
    before = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with pytest.raises(KeyboardInterrupt):
            main_ref.run_in(tmp_path, [sys.executable, "-c", child], log=log)
    finally:
        signal.signal(signal.SIGINT, before)
    assert seen == ["main: started"]
    assert cleaned.read_text() == "yes"
