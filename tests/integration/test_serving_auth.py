"""API keys -> tenants and rate limits for the HTTP graph API (graph/serving/auth.py): keys
files that keep only digests, keys from the environment, `rmn keys`, the per-key token bucket
and its 429 over HTTP, brand ownership, and loopback-only serving when no keys are configured."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from fastapi.testclient import TestClient
from langgraph_sdk import get_sync_client
from langgraph_sdk.errors import RateLimitError
from serving_support import ACME_KEY, GLOBEX_KEY, KEYS, start_interrupted, toy_graph, toy_settings
from typer.testing import CliRunner

from cli.serve import keys_app
from graph.serving.auth import (
    KeyConfigError,
    KeyRing,
    RateLimiter,
    add_key,
    hash_key,
    read_keys_file,
)
from server import create_app, serve_in_thread
from tools.errors import AccessDeniedError, UnknownBrandError
from tools.policy.ownership import check_brand_access, tenant_brands


def test_keys_file_keeps_only_digests(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    key = add_key(path, "acme", label="ci")
    second = add_key(path, "globex", key="globex-key-0123456789abcdef")
    text = path.read_text()
    assert key not in text and second not in text
    assert hash_key(key) in text
    assert path.stat().st_mode & 0o777 == 0o600
    ring = KeyRing.load(path=path)
    assert ring.tenant_for(key) == "acme"
    assert ring.tenant_for(second) == "globex"
    assert ring.tenant_for("not-a-key-at-all-000") is None
    assert ring.tenants() == ["acme", "globex"]
    assert [e.tenant for e in read_keys_file(path).keys] == ["acme", "globex"]
    with pytest.raises(KeyConfigError, match="already"):
        add_key(path, "acme", key=key)
    # The env var and the file together; one key for two tenants is refused.
    both = KeyRing.load(env=f"{ACME_KEY}:acme", path=path)
    assert both.tenant_for(ACME_KEY) == "acme" and both.tenant_for(second) == "globex"
    with pytest.raises(KeyConfigError, match="two tenants"):
        KeyRing.load(env=f"{second}:acme", path=path)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ("short:acme", "at least 16"),
        (f"{ACME_KEY}", "not 'key:tenant'"),
        (f"{ACME_KEY}:Not A Tenant", "not a valid id"),
    ],
)
def test_env_keys_are_checked(env: str, message: str) -> None:
    with pytest.raises(KeyConfigError, match=message):
        KeyRing.load(env=env)


def test_keys_file_errors_are_clear(tmp_path: Path) -> None:
    with pytest.raises(KeyConfigError, match="does not exist"):
        KeyRing.load(path=tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"version": 1, "keys": [{"tenant": "acme"}]}))
    with pytest.raises(KeyConfigError, match="invalid"):
        KeyRing.load(path=bad)


def test_keys_commands(tmp_path: Path) -> None:
    app = typer.Typer()
    app.add_typer(keys_app, name="keys")
    path = tmp_path / "keys.json"
    runner = CliRunner()
    made = runner.invoke(app, ["keys", "add", "acme", "--keys", str(path), "--json"])
    assert made.exit_code == 0, made.output
    key = json.loads(made.output)["key"]
    assert KeyRing.load(path=path).tenant_for(key) == "acme"
    listed = runner.invoke(app, ["keys", "list", "--keys", str(path), "--json"])
    assert [r["tenant"] for r in json.loads(listed.output)] == ["acme"]
    assert key not in listed.output
    bad = runner.invoke(app, ["keys", "add", "Not Valid", "--keys", str(path)])
    assert bad.exit_code == 2 and "not a valid id" in bad.output


def test_rate_limiter_refills_per_key() -> None:
    now = [0.0]
    limiter = RateLimiter(rate=2.0, burst=3, clock=lambda: now[0])
    assert [limiter.acquire("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    wait = limiter.acquire("a")
    assert wait == pytest.approx(0.5)
    assert limiter.retry_after_header(wait) == "1"
    assert limiter.acquire("b") == 0.0  # other keys have their own bucket
    now[0] += 0.5
    assert limiter.acquire("a") == 0.0
    assert limiter.acquire("a") > 0


def test_brand_access_follows_brand_ownership() -> None:
    assert tenant_brands("acme") == ["acme"]
    assert tenant_brands("nobody") == []
    assert check_brand_access("acme", None, ["acme"]) == "acme"
    assert check_brand_access("acme", "acme", ["acme"]) == "acme"
    with pytest.raises(AccessDeniedError, match="does not belong"):
        check_brand_access("acme", "globex", ["acme"])
    with pytest.raises(UnknownBrandError):
        check_brand_access("acme", "umbrella", ["acme"])
    with pytest.raises(AccessDeniedError, match="several brands"):
        check_brand_access("holding", None, ["acme", "globex"])


def test_rate_limit_answers_429_with_retry_after(tmp_path: Path) -> None:
    settings = toy_settings(tmp_path, rate_per_s=0.5, rate_burst=3)
    with serve_in_thread(create_app(toy_graph, KeyRing.from_keys(KEYS), settings)) as base:
        client = get_sync_client(url=base, api_key=ACME_KEY)
        for _ in range(3):
            client.threads.search()
        with pytest.raises(RateLimitError) as caught:
            client.threads.search()
        assert int(caught.value.response.headers["Retry-After"]) >= 1
        assert caught.value.body["type"] == "rate_limited"
        # Each key has its own allowance.
        get_sync_client(url=base, api_key=GLOBEX_KEY).threads.search()


def test_without_keys_only_loopback_as_one_tenant(tmp_path: Path) -> None:
    settings = toy_settings(tmp_path, open_tenant="acme")
    app = create_app(toy_graph, None, settings)
    with serve_in_thread(app) as base:
        client = get_sync_client(url=base, api_key=None)
        _, out = start_interrupted(client)
        assert out["tenant"] == "acme"
    with TestClient(app, client=("203.0.113.9", 5000)) as remote:
        refused = remote.post("/threads", json={})
    assert refused.status_code == 403 and "loopback" in refused.json()["message"]


def test_the_default_keys_file_is_git_ignored() -> None:
    """`rmn keys add` writes rmn-keys.json in the working directory by default: it must never
    be committed by accident (it names every key's tenant and role)."""
    import subprocess

    from tools.paths import PROJECT_ROOT

    for path in ("rmn-keys.json", "deploy/rmn-keys.json"):
        ignored = subprocess.run(
            ["git", "check-ignore", "-q", "--no-index", path], cwd=PROJECT_ROOT, check=False
        )
        assert ignored.returncode == 0, f"{path} is not git-ignored"
