"""Health and server info: no key needed."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

router = APIRouter(tags=["meta"])


@router.get("/ok")
def ok() -> dict[str, bool]:
    return {"ok": True}


@router.get("/info")
def info() -> dict[str, Any]:
    return {"version": "1", "flags": {"assistants": True, "crons": False, "langsmith": False}}
