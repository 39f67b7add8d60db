"""`rmn`: the command-line front door. Subcommands live one module each in this package;
heavy libraries are imported inside the commands so that `rmn --help` stays instant."""

from __future__ import annotations

import logging
import os

import typer

# Models come from installed packages, never from a hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# bitsandbytes, imported by transformers, warns on CPU machines that it cannot fetch an optional
# 4-bit kernel from a hub; 4-bit loading is CUDA-only here, so the warning is noise.
logging.getLogger("bitsandbytes").setLevel(logging.ERROR)

from cli import (  # noqa: E402
    adapters,
    bench,
    catalog,
    cleanroom,
    db,
    demo,
    evaluate,
    export,
    feedback,
    governance,
    harmonize,
    parse,
    plan,
    rag,
    serve,
    train,
    whatif,
    world,
)
from cli import eval as eval_cli  # noqa: E402

app = typer.Typer(
    name="rmn",
    help="RMN Copilot: plan retail-media spend across retail media networks.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(world.app, name="world")
app.command("harmonize")(harmonize.harmonize)
app.command("parse")(parse.parse)
app.command("plan")(plan.plan)
app.command("resume")(plan.resume)
app.add_typer(plan.threads_app, name="threads")
app.command("show")(plan.show)
app.add_typer(governance.app, name="governance")
app.command("serve")(serve.serve)
app.add_typer(serve.keys_app, name="keys")
app.add_typer(cleanroom.app, name="cleanroom")
app.add_typer(rag.app, name="rag")
app.add_typer(train.app, name="train")
app.command("eval")(eval_cli.eval_adapter)
app.add_typer(adapters.app, name="adapters")
app.add_typer(evaluate.app, name="evaluate")
app.add_typer(bench.app, name="bench")
app.command("demo")(demo.demo)
app.command("check")(catalog.check)
app.add_typer(catalog.brands_app, name="brands")
app.add_typer(catalog.retailers_app, name="retailers")
app.command("export")(export.export)
app.command("whatif")(whatif.whatif)
app.add_typer(feedback.app, name="feedback")
app.add_typer(db.app, name="db")

if __name__ == "__main__":
    app()
