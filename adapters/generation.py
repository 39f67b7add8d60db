"""What one generation call returns: the answer and how it was produced.

Its own module, below both the runtime (which makes them) and structured output (whose error
carries the failed one), so neither has to import the other for it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Generation:
    """One answer and how it was produced."""

    text: str
    parsed: Any = None
    adapters_active: list[str] = field(default_factory=list)
    composition: str = "base"  # base | single | cat | merged
    decode: str = "lora/float32"
    # Which backend wrote it: "in-process" (this process's model) or "endpoint" (an
    # OpenAI-compatible server, `adapters.endpoint`).
    backend: str = "in-process"
    repaired: bool = False
    fallback: bool = False
    error: str | None = None
    tokens: int = 0  # generated, all attempts
    forced_tokens: int = 0  # of those, forced by the grammar and fed without a pass each
    prompt_tokens: int = 0
    seconds: float = 0.0
    batch_size: int = 1
    finish_reason: str = "stop"  # stop | length
    # The mean log-probability of the tokens the model chose (not those the grammar forced),
    # under its own scores before the grammar's mask: near 0 where the grammar let it write
    # what it would have written anyway, low where the grammar bent it (text that reads
    # poorly). None where not measured (the `generate` path, an endpoint, no chosen token).
    chosen_logprob: float | None = None
    # The conversation the model was given, as decoded: the task's system message and the
    # output instruction included (what a reviewer's rating of this answer rates).
    messages: list[dict[str, str]] = field(default_factory=list)

    def metadata(self) -> dict[str, Any]:
        return {
            "adapters_active": list(self.adapters_active),
            "composition": self.composition,
            "decode": self.decode,
            "backend": self.backend,
            "repaired": self.repaired,
            "fallback": self.fallback,
            "error": self.error,
            "tokens": self.tokens,
            "forced_tokens": self.forced_tokens,
            "prompt_tokens": self.prompt_tokens,
            "seconds": round(self.seconds, 4),
            "batch_size": self.batch_size,
            "finish_reason": self.finish_reason,
            "chosen_logprob": self.chosen_logprob,
            "messages": [dict(m) for m in self.messages],
        }
