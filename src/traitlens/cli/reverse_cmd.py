"""``traitlens reverse``: steer along the safety direction and watch the personality."""

from __future__ import annotations

from pathlib import Path

import typer

from traitlens.cli.common import ModelOption, console, load_with_status, progress_factory

__all__ = ["reverse_command"]


def reverse_command(
    model: str = ModelOption,
    data: Path | None = typer.Option(
        None, "--data", help="Public data directory laid out like ../shared/data (default: our samples)."
    ),
    strengths: str = typer.Option(
        "-0.3,-0.15,0.15,0.3", "--strengths", help="Alphas (x residual norm), comma-separated."
    ),
    ablate: bool = typer.Option(True, "--ablate/--no-ablate", help="Also project the direction out."),
    limit: int | None = typer.Option(None, "--limit", min=4, help="At most N harmful and N harmless prompts."),
    max_new_tokens: int = typer.Option(32, "--max-new-tokens", min=4, max=256),
    out: Path = typer.Option(Path("runs/reverse"), "--out"),
) -> None:
    """Refusal rate and the four personality shares, under the safety direction at several strengths."""
    from traitlens._io import write_json, write_text
    from traitlens.errors import TraitlensError
    from traitlens.reverse import reverse, safety_prompts
    from traitlens.reverse.report import plot_reverse, reverse_markdown

    try:
        alphas = [float(s) for s in strengths.split(",") if s.strip()]
    except ValueError:
        raise TraitlensError(f"--strengths must be comma-separated numbers, not '{strengths}'") from None
    prompts = safety_prompts(data, limit)  # bad data fails before the model loads
    loaded = load_with_status(model)
    with progress_factory() as factory:
        result = reverse(
            loaded, prompts, strengths=alphas, ablate=ablate, max_new_tokens=max_new_tokens, progress=factory
        )
    write_json(out / "reverse.json", result.to_dict())
    plot_reverse(result, out / "reverse.png")
    write_text(out / "reverse.md", reverse_markdown(result))
    console.print(reverse_markdown(result).split("## Does")[0], markup=False, highlight=False)
    console.print(f"wrote {out}/reverse.json, reverse.md, reverse.png")
