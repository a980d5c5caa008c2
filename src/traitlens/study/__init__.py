"""Studies: the paper's experiments as one resumable sweep (``traitlens study SPEC``).

``load_spec`` validates a TOML spec before any model loads; ``execute`` runs its units on Ray or
in-process, caching each under a content hash; ``write_report`` turns the units into
``study.json``, ``study.md`` and figures without a model."""

from traitlens.study.execute import StudyRun, execute
from traitlens.study.report import write_report
from traitlens.study.spec import StudySpec, load_spec

__all__ = ["load_spec", "execute", "write_report", "run_study", "StudySpec", "StudyRun"]


def run_study(spec_path, out, *, data=None, executor="ray", workers=None, address=None, progress=None) -> dict:
    """Validate, run (resuming from ``out``'s cache) and report; returns ``study.json``'s content."""
    spec = load_spec(spec_path, data)
    run = execute(spec, out, executor=executor, workers=workers, address=address, progress=progress)
    return write_report(run, out)
