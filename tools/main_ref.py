"""Main's code, run in the same run: a temporary git worktree of a ref and a subprocess in it.

"Main" is the code a bench compares the current code with (`--main-ref REF`, e.g. 6c07a30, the
code before the language work). The benches that measure it (`rmn bench language`, through
`tools.creative.main_copy`; `rmn bench e2e`, through `cli.e2e_bench`) share this:

1. `resolve_ref` / `checkout`: the commit REF names, and a temporary `git worktree add --detach`
   of this repository at it, removed afterwards, also on error;
2. `run_in`: a command run with the worktree as working directory and PYTHONPATH (so its own
   packages are imported, not this checkout's: the editable install's finder comes after the
   path), on this interpreter, offline (`driver_env`), with its own adapters, catalog and data
   (the variables that point the current code elsewhere are dropped), and a temporary cache
   that shares only this checkout's converted base weights (`driver_cache`). Its stdin and
   stdout pass through files, so neither pipe can fill; its progress lines ("main: ...") go to
   `log` as they come, the rest of its stderr is kept for the error if it fails.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from tools.errors import RMNError
from tools.paths import PROJECT_ROOT, cache_dir

# Where the current code finds things that main's code must not read: its adapters, catalog,
# data and checkpoints come from the worktree (or its defaults), never from these.
CURRENT_ONLY_ENV = ("RMN_ADAPTERS_DIR", "RMN_CORPUS_DIR", "RMN_DATA_DIR", "RMN_CHECKPOINT_DIR")


class MainRefError(RMNError):
    """Main could not be measured: git, the ref, the checkout or main's code."""

    kind = "main_ref_error"


def _git(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    git = shutil.which("git")
    if git is None:
        raise MainRefError("--main-ref needs git, and git is not installed (not on PATH)")
    return subprocess.run(
        [git, "-C", str(root), *args], capture_output=True, text=True, check=False
    )


def resolve_ref(ref: str, root: Path = PROJECT_ROOT) -> str:
    """The commit `ref` names in the repository at `root`; a clear error if none."""
    if not ref or ref.startswith("-"):
        raise MainRefError(f"--main-ref {ref!r} is not a git ref", ref=ref)
    found = _git(root, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
    if found.returncode != 0:
        raise MainRefError(
            f"unknown ref {ref!r}: no such commit, branch or tag in {root} "
            "(e.g. --main-ref 6c07a30)",
            ref=ref,
        )
    return found.stdout.strip()


@contextmanager
def checkout(ref: str, root: Path = PROJECT_ROOT) -> Iterator[tuple[Path, str]]:
    """(a temporary detached worktree of `root` at `ref`, the commit), removed on exit, also
    on error."""
    commit = resolve_ref(ref, root)
    tmp = Path(tempfile.mkdtemp(prefix="rmn-main-"))
    tree = tmp / "tree"
    try:
        added = _git(root, "worktree", "add", "--detach", str(tree), commit)
        if added.returncode != 0:
            raise MainRefError(
                f"could not check out {ref} ({commit[:12]}) as a worktree: "
                f"{added.stderr.strip()[-500:]}",
                ref=ref,
            )
        yield tree, commit
    finally:
        if tree.exists():
            _git(root, "worktree", "remove", "--force", str(tree))
        shutil.rmtree(tmp, ignore_errors=True)
        _git(root, "worktree", "prune")


def driver_env(tree: Path, cache: Path) -> dict[str, str]:
    """Main's environment: this one without the current code's locations, PYTHONPATH the
    worktree, offline, and `cache` as RMN_CACHE_DIR."""
    env = {k: v for k, v in os.environ.items() if k not in CURRENT_ONLY_ENV}
    env.update(
        PYTHONPATH=str(tree),
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        RMN_CACHE_DIR=str(cache),
        PYTHONUNBUFFERED="1",
    )
    return env


def driver_cache(tmp: Path) -> Path:
    """A cache folder for main's code whose `models/` is this checkout's: the base model's
    converted weights, keyed by the GGUF's fingerprint and converted by code 6c07a30 shares
    (`adapters.base.ensure_base_weights`); nothing else of this checkout's cache is visible
    (main builds its own policy index and the rest in this folder)."""
    cache = tmp / "cache"
    cache.mkdir(parents=True, exist_ok=True)
    models = cache_dir().resolve() / "models"
    if models.is_dir():
        (cache / "models").symlink_to(models, target_is_directory=True)
    return cache


# Main starts through this shim, which puts SIGINT back to its default before it becomes main.
# A bench started as a background job (`cmd &` in a script, nohup) runs with SIGINT ignored,
# which main inherits; interrupted, main was then killed after 10 s without cleaning up its
# temporary market folder (found when `make test` ran in the background: the test of this
# failed). A shim, not `preexec_fn`, which is unsafe in a process with threads (torch's).
_INTERRUPTIBLE = (
    "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
    "os.execvp(sys.argv[1], sys.argv[1:])"
)


def run_in(
    tree: Path,
    argv: Sequence[str],
    stdin: str | None = None,
    *,
    log: Callable[[str], None] | None = None,
    what: str = "main's code",
) -> str:
    """Run `argv` in `tree` as main (`driver_env`, a temporary `driver_cache`) with `stdin`;
    its stdout. Its progress lines ("main: ...") go to `log` as they come. A clear error,
    with the end of its stderr (and of its stdout, where main's CLI writes its JSON error), if
    it exits non-zero; if this process is interrupted, it is interrupted too (killed after 10 s)."""
    with tempfile.TemporaryDirectory(prefix="rmn-main-run-") as tmp:
        folder = Path(tmp)
        (folder / "stdin").write_text(stdin or "")
        env = driver_env(tree, driver_cache(folder))
        tail: deque[str] = deque(maxlen=12)
        with (folder / "stdin").open() as given, (folder / "stdout").open("w") as out:
            proc = subprocess.Popen(
                [sys.executable, "-c", _INTERRUPTIBLE, *argv],
                stdin=given,
                stdout=out,
                stderr=subprocess.PIPE,
                text=True,
                cwd=tree,
                env=env,
            )
            try:
                assert proc.stderr is not None
                for line in proc.stderr:
                    tail.append(line.rstrip())
                    if log is not None and line.startswith("main: "):
                        log(line.rstrip())
                returncode = proc.wait()
            except BaseException:  # interrupted: main may clean up its temporary folders first
                proc.send_signal(signal.SIGINT)
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
                raise
        said = (folder / "stdout").read_text()
    if returncode != 0:
        stdout = f"\nstdout: {said.strip()[-500:]}" if said.strip() else ""
        raise MainRefError(
            f"{what} failed (exit {returncode}) in {tree}:\n" + "\n".join(tail) + stdout,
            returncode=returncode,
        )
    return said
