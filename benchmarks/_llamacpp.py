"""llama.cpp as a peer: built in the benchmark's own directory (never by ``make install``) from
the ``llama-cpp-python`` sdist's vendored source, then run as ``llama-completion`` on the same
GGUF file with traitlens' exported control vector (``--control-vector-scaled``).

llama.cpp decodes the GGUF's quantized weights as they are (traitlens dequantizes them to
float32), so its greedy tokens can differ from ours for that reason alone; the agreement is
reported, not assumed.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tarfile
from pathlib import Path

from _harness import ROOT

__all__ = ["ensure_llamacpp", "run_llamacpp", "VERSION"]

VERSION = "0.3.36"  # the llama-cpp-python sdist whose vendored llama.cpp we build
HOME = ROOT.parent / ".bench-venvs" / "llamacpp"
# Native builds die with an illegal instruction on this machine's virtual CPU.
CMAKE_FLAGS = [
    "-DCMAKE_BUILD_TYPE=Release",
    "-DGGML_NATIVE=OFF",
    "-DGGML_AVX2=ON",
    "-DLLAMA_CURL=OFF",
    "-DLLAMA_BUILD_TESTS=OFF",
    "-DLLAMA_BUILD_SERVER=OFF",
]
_EVAL = re.compile(r"(?<!prompt )eval time =\s*([\d.]+) ms /\s*(\d+) runs")


def ensure_llamacpp() -> Path:
    """The ``llama-completion`` binary, downloading and building it on first use."""
    binary = HOME / "build" / "bin" / "llama-completion"
    if binary.exists():
        return binary
    HOME.mkdir(parents=True, exist_ok=True)
    sdist = HOME / f"llama_cpp_python-{VERSION}.tar.gz"
    if not sdist.exists():
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-binary", ":all:"]
            + [f"llama-cpp-python=={VERSION}", "-d", str(HOME)],
            check=True,
        )
    source = HOME / f"llama_cpp_python-{VERSION}" / "vendor" / "llama.cpp"
    if not source.exists():
        with tarfile.open(sdist) as archive:
            archive.extractall(HOME, filter="data")
    build = HOME / "build"
    subprocess.run(["cmake", "-S", str(source), "-B", str(build), *CMAKE_FLAGS], check=True, capture_output=True)
    jobs = str(os.cpu_count() or 2)
    subprocess.run(["cmake", "--build", str(build), "--target", "llama-completion", "-j", jobs], check=True)
    return binary


def run_llamacpp(binary: Path, gguf: Path, vector_gguf: Path, alpha: float, prompt: str, n: int) -> dict:
    """Greedy ``n`` tokens after ``prompt`` (chat-templated text): tokens/s of the decode phase
    as llama.cpp itself times it, and the generated text."""
    threads = str(min(os.cpu_count() or 2, 8))
    command = [str(binary), "-m", str(gguf), "-p", prompt, "-n", str(n), "--temp", "0", "--top-k", "1"]
    command += ["-t", threads, "-no-cnv", "--no-display-prompt", "--ignore-eos", "-s", "0"]
    command += ["--control-vector-scaled", f"{vector_gguf}:{alpha}"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL)
    if done.returncode != 0:
        raise RuntimeError(done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "llama.cpp failed")
    found = _EVAL.findall(done.stderr)
    if not found:
        raise RuntimeError("no decode timing in llama.cpp's output")
    ms, count = float(found[-1][0]), int(found[-1][1])
    return {"tok_per_s": count / (ms / 1000), "text": done.stdout}
