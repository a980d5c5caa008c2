"""``traitlens serve``: the playground page on a local port."""

from __future__ import annotations

from pathlib import Path

import typer

from traitlens.cli.common import ModelOption, console, err_console, load_with_status

__all__ = ["serve_command"]


def serve_command(
    model: str = ModelOption,
    vectors: Path | None = typer.Option(None, "--vectors", help="Vector library (default: results/vectors/<model>)."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to bind (default: this machine only)."),
    port: int = typer.Option(8765, "--port", min=1, max=65535),
    out: Path = typer.Option(Path("runs/mixes"), "--out", help="Where 'save this mix' writes vectors."),
) -> None:
    """A local web page: steer the model with one slider per trait and watch its text and type move."""
    from traitlens.errors import TraitlensError

    try:
        import uvicorn

        from traitlens.serve import Playground, create_app
        from traitlens.serve.session import load_library
    except ImportError as exc:
        raise TraitlensError(f"the playground needs fastapi and uvicorn ({exc.name} is missing)") from None
    loaded = load_with_status(model)
    library = vectors or Path("results") / "vectors" / loaded.name
    if not library.is_dir():
        raise TraitlensError(f"vector library not found: {library}")
    playground = Playground(loaded, load_library(library, loaded), out)
    if host not in ("127.0.0.1", "localhost", "::1"):
        err_console.print(f"[yellow]warning:[/] listening on {host}: anyone who can reach it can use the model")
    console.print(f"traitlens playground on http://{host}:{port} ({len(playground.vectors)} vectors)")
    uvicorn.run(create_app(playground), host=host, port=port, log_level="warning")
