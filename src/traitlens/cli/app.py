"""Entry point: a typer app whose user errors end in one line on stderr and exit code 2."""

from __future__ import annotations

import os
import sys

# Before anything imports huggingface_hub: never reach for the network.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import typer  # noqa: E402

try:  # typer >= 0.20 vendors its own click; older releases use click itself
    from typer._click import exceptions as click_errors  # noqa: E402
except ImportError:  # pragma: no cover
    from click import exceptions as click_errors  # noqa: E402

from traitlens import __version__  # noqa: E402
from traitlens.cli.align_cmd import align_command  # noqa: E402
from traitlens.cli.assess_cmd import assess_command  # noqa: E402
from traitlens.cli.bench_cmd import bench_command  # noqa: E402
from traitlens.cli.edit_cmd import edit_command  # noqa: E402
from traitlens.cli.model_cmd import chat, model_app  # noqa: E402
from traitlens.cli.null_cmd import null_command  # noqa: E402
from traitlens.cli.probe_cmd import probe_command  # noqa: E402
from traitlens.cli.reverse_cmd import reverse_command  # noqa: E402
from traitlens.cli.serve_cmd import serve_command  # noqa: E402
from traitlens.cli.study_cmd import study_command  # noqa: E402
from traitlens.cli.vector_cmd import export_command, import_command, inspect_command  # noqa: E402
from traitlens.errors import TraitlensError  # noqa: E402

__all__ = ["app", "main"]

app = typer.Typer(
    name="traitlens",
    help="Measure, probe and edit the personality of language models.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(model_app, name="model")
app.command("chat")(chat)
app.command("assess")(assess_command)
app.command("probe")(probe_command)
app.command("edit")(edit_command)
app.command("bench")(bench_command)
app.command("export")(export_command)
app.command("import")(import_command)
app.command("inspect")(inspect_command)
app.command("serve")(serve_command)
app.command("reverse")(reverse_command)
app.command("null")(null_command)
app.command("study")(study_command)
app.command("align")(align_command)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"traitlens {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """traitlens: assess, probe, edit and benchmark model personality."""


def _fail(message: str, code: int = 2) -> None:
    print(f"traitlens: error: {message}", file=sys.stderr)
    sys.exit(code)


def main(argv: list[str] | None = None) -> None:
    _quiet_libraries()
    try:
        result = app(args=argv, standalone_mode=False, prog_name="traitlens")
    except TraitlensError as exc:
        _fail(str(exc))
    except click_errors.NoArgsIsHelpError:
        sys.exit(0)  # typer has already printed the help
    except click_errors.UsageError as exc:
        _fail(exc.format_message().replace("\n", " "))
    except typer.Abort:
        _fail("aborted", 130)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        _fail("interrupted", 130)
    sys.exit(result if isinstance(result, int) else 0)


def _quiet_libraries() -> None:
    import logging
    import warnings

    warnings.filterwarnings("ignore")
    for name in ("transformers", "transformer_lens", "root"):
        logging.getLogger(name).setLevel(logging.ERROR)
    logging.getLogger().setLevel(logging.ERROR)
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # our own rich progress is enough
