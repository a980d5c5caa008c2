"""File I/O: atomic writes (a reader never sees a half-written output, even if we are killed),
checksummed cache entries, and line-numbered JSONL reads (every error names the file and line)."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from .errors import TraitlensError

__all__ = [
    "cache_dir",
    "atomic_write",
    "read_text",
    "read_jsonl",
    "write_json",
    "write_text",
    "save_figure",
    "save_checked",
    "load_checked",
]


def cache_dir() -> Path:
    """Where traitlens keeps what it can recompute: ``$TRAITLENS_CACHE``, default ``~/.cache/traitlens``."""
    return Path(os.environ.get("TRAITLENS_CACHE", Path.home() / ".cache" / "traitlens"))


def atomic_write(path: str | Path, writer: Callable[[Path], None]) -> Path:
    """Call ``writer(tmp_path)`` then rename the temporary file onto ``path``."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise TraitlensError(f"cannot write {path}: {exc.strerror or exc}") from None
    os.close(fd)
    try:
        writer(Path(tmp))
        os.replace(tmp, path)
    except OSError as exc:  # a full disk, a read-only directory: no traceback, no partial file
        Path(tmp).unlink(missing_ok=True)
        raise TraitlensError(f"cannot write {path}: {exc.strerror or exc}") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_text(path: str | Path, text: str) -> Path:
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def write_json(path: str | Path, obj: Any) -> Path:
    return write_text(path, json.dumps(obj, indent=2, ensure_ascii=False) + "\n")


def save_figure(fig, path: str | Path, dpi: int = 150) -> Path:
    """Save a matplotlib figure atomically as PNG and close it."""
    import matplotlib.pyplot as plt

    try:
        return atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=dpi, format="png", bbox_inches="tight"))
    finally:
        plt.close(fig)


def _checksum(value) -> str:
    """sha256 of a tensor's (torch or numpy) bytes in row-major order."""
    import numpy as np

    data = value.detach().contiguous().cpu().numpy() if hasattr(value, "detach") else value
    return hashlib.sha256(np.ascontiguousarray(data).tobytes()).hexdigest()


def save_checked(path: str | Path, name: str, value, framework: str = "np") -> None:
    """One tensor as a safetensors file with its checksum, written atomically (``framework``:
    ``np`` or ``pt``, the tensor's kind). Raises ``TraitlensError`` when it cannot be written."""
    if framework == "np":
        from safetensors.numpy import save_file
    else:
        from safetensors.torch import save_file
    tensors = {name: value.contiguous() if framework == "pt" else value}
    metadata = {"sha256": _checksum(tensors[name])}
    atomic_write(path, lambda tmp: save_file(tensors, str(tmp), metadata=metadata))


def load_checked(path: str | Path, name: str, framework: str = "np"):
    """The tensor ``save_checked`` wrote, or ``None`` when the file is missing, unreadable or
    fails its checksum: a damaged cache entry is recomputed, never trusted."""
    from safetensors import SafetensorError, safe_open

    if not Path(path).is_file():
        return None
    try:
        with safe_open(str(path), framework=framework) as handle:
            expected = (handle.metadata() or {}).get("sha256")
            value = handle.get_tensor(name)
    except (SafetensorError, KeyError, OSError, ValueError):
        return None
    return value if expected == _checksum(value) else None


def read_text(path: str | Path) -> str:
    """A UTF-8 text file's contents; binary or mis-encoded bytes and unreadable files are one
    clear error naming the file, never a traceback."""
    path = Path(path)
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise TraitlensError(f"{path.name}: not UTF-8 text (undecodable byte at offset {exc.start})") from None
    except OSError as exc:
        raise TraitlensError(f"{path}: cannot read ({exc.strerror or exc})") from None


def read_jsonl(path: str | Path) -> Iterator[tuple[str, int, dict[str, Any]]]:
    """Yield ``(where, line_number, record)`` for every non-blank line of a JSON-lines file.

    ``where`` ("file.jsonl line 7") prefixes the caller's own validation errors; malformed JSON and
    non-object lines are refused here, so every reader words those the same way.
    """
    path = Path(path)
    for number, line in enumerate(read_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path.name} line {number}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise TraitlensError(f"{where}: invalid JSON ({exc.msg})") from None
        if not isinstance(record, dict):
            raise TraitlensError(f"{where}: expected a JSON object, got {type(record).__name__}")
        yield where, number, record
