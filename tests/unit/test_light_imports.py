"""Commands that plan nothing start without the heavy libraries: `rmn keys` and `rmn db upgrade`
imported Presidio (spaCy, transformers) through the graph package's state and took 16-23 s on
2 cores for a listing ("rmn keys list" 17.5 s before, 3.4 s after, the same machine). Checked
in a fresh interpreter, as a shell starts them."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("presidio_analyzer", "spacy", "torch", "transformers", "chromadb")


def test_the_cli_and_the_graph_package_import_no_heavy_library() -> None:
    code = (
        "import sys, cli.main, graph, graph.serving.auth\n"
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, timeout=120)  # fmt: skip
    assert done.stdout.strip() == ""


def test_a_brief_entering_the_graph_is_still_redacted() -> None:
    from graph.state import redacted_brief, redacted_input

    said = "Call Jo at 312-555-0199 about the $1M plan"
    assert "312-555-0199" not in redacted_brief(None, said)
    assert "312-555-0199" not in redacted_input({"brief": said})["brief"]
    assert redacted_brief(None, 7) == 7  # not text: kept for the planner to refuse
