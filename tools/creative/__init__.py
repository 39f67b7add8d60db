"""Ad copy, in one package: the generate/check/fix/regenerate loop (`write`), what copy is
written from (`facts`: rules, product benefits and approved claims, brand voice; `products`:
benefits and the held-out product lines), the decode grammar that carries the rules
(`grammar`), the verdict copy is judged by (`review`), the rule fixes (`fix`), template copy
(`compose`, `fallback`) and the phrase banks and casing it uses (`templates`), every prompt the
copy model sees (`prompts`), and the quality figures of `rmn bench language` (`quality`,
`bench`, `seen_lines`, `resummarize`). Training (`adapters.training`) imports the composer and
prompts from here; nothing here imports training code.

    results = write_copy_many(llm, [CopyRequest(retailer_id="alpha", brand_id="acme"), ...])
"""

from tools.creative.binding import CREATIVE_TASK, DEFAULT_KINDS
from tools.creative.fallback import fallback_candidates, fallback_copy
from tools.creative.fix import fix_copy
from tools.creative.prompts import creative_request
from tools.creative.review import quality_issues, review_copy
from tools.creative.write import (
    CopyPath,
    CopyRequest,
    CopyResult,
    CreativeError,
    write_copy,
    write_copy_many,
)

__all__ = [
    "CREATIVE_TASK",
    "DEFAULT_KINDS",
    "CopyPath",
    "CopyRequest",
    "CopyResult",
    "CreativeError",
    "creative_request",
    "fallback_candidates",
    "fallback_copy",
    "fix_copy",
    "quality_issues",
    "review_copy",
    "write_copy",
    "write_copy_many",
]
