from typer.testing import CliRunner

from cli.main import app

runner = CliRunner()


def test_help_lists_the_commands() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in (
        "world",
        "harmonize",
        "parse",
        "cleanroom",
        "rag",
        "train",
        "eval",
        "evaluate",
        "bench",
        "demo",
    ):
        assert command in result.output


def test_unknown_command_is_a_usage_error() -> None:
    result = runner.invoke(app, ["no-such-command"])
    assert result.exit_code == 2
