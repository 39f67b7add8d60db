"""The prompts a retailer adapter sees: a policy question asked over the corpus section that
answers it (`qa_request`), the way the copilot serves a question with a retrieved excerpt.
Training (`adapters.training.policy_qa`, `adapters.training.datasets`) builds its rows here, so
the adapter learns the layout it is served. Also the placements' names as prompts spell them,
which the copy prompts (`tools.creative.prompts`) share.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from tools.policy import corpus_dir
from tools.policy.loader import read_corpus_document

PLACEMENT_LABELS: dict[str, str] = {
    "sponsored_search": "sponsored search",
    "sponsored_product": "sponsored product",
    "display_onsite": "onsite display",
    "display_offsite": "offsite display",
    "instore_screen": "in-store screen",
    "onsite_video": "onsite video",
}


def placement_label(value: str) -> str:
    """A placement as a prompt names it: "in-store screen" for `instore_screen`."""
    return PLACEMENT_LABELS.get(value, value.replace("_", " "))


@lru_cache(maxsize=512)
def _section_text(doc_path: str, anchor: str, corpus: Path) -> str:
    rel = Path(*Path(doc_path).parts[1:])  # drop the corpus folder name
    doc = read_corpus_document(corpus / rel, corpus)
    section = doc.doc.anchors()[anchor]
    return f"{section.heading}\n{section.text}"


def section_text(source: str, corpus: Path | None = None) -> str:
    """The heading and text of the corpus section a `source` (`path#anchor`) points at."""
    doc_path, _, anchor = source.partition("#")
    return _section_text(doc_path, anchor, corpus or corpus_dir())


def qa_request(retailer_name: str, source: str, question: str) -> str:
    """The user turn of a policy question: the retrieved section, then the question."""
    return (
        f"Policy excerpt from {retailer_name} ({source.split('/', 1)[-1]}):\n"
        f"{section_text(source)}\n\n"
        f"Question: {question}\nAnswer with the fact only."
    )
