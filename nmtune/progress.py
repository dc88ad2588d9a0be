"""Progress of a job while ``Head.wait()`` polls it: one updating line in a terminal, an
updating HTML block in a Jupyter notebook (through IPython, which a notebook already has),
one line per change elsewhere (logs, CI), or your own callback."""

from __future__ import annotations

import html
import sys
import time
from collections.abc import Callable
from typing import TextIO

from nmtune.types import Job

ProgressCallback = Callable[[Job], None]

__all__ = ["ProgressCallback", "describe", "make_progress"]


def describe(job: Job, label: str = "") -> str:
    """One line: status, stage, progress, and the latest epoch's losses and scores."""
    parts = [p for p in (label, job.status, job.stage or "") if p]
    p = job.progress
    if p.total:
        width = 20
        filled = round(width * min(p.done, p.total) / p.total)
        parts.append("[" + "#" * filled + "." * (width - filled) + f"] {p.done}/{p.total}")
    if job.epochs and job.stage != "embed":
        e = job.epochs[-1]
        tag = f"{e.method}" + (" cv" if e.phase == "cv" else "")
        parts.append(f"{tag} epoch {e.epoch}/{e.epochs}")
        losses = " ".join(f"{k}={v:.4f}" for k, v in e.losses.items() if v is not None)
        if losses:
            parts.append(losses)
        if e.val_accuracy is not None:
            parts.append(f"val_acc={e.val_accuracy:.3f}")
    if job.error is not None:
        parts.append(f"{job.error.type}: {job.error.message}")
    return " | ".join(parts)


def _in_notebook() -> bool:
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return False
    shell = getattr(ipython, "get_ipython", lambda: None)()
    return type(shell).__name__ == "ZMQInteractiveShell"


class _Terminal:
    def __init__(self, label: str, stream: TextIO) -> None:
        self.label, self.stream = label, stream
        self.tty = bool(getattr(stream, "isatty", lambda: False)())
        self.last = ""
        self.started = time.monotonic()
        self.width = 0

    def __call__(self, job: Job) -> None:
        line = describe(job, self.label)
        if line == self.last and not job.done:
            return
        self.last = line
        stamp = f"{time.monotonic() - self.started:6.1f}s "
        if self.tty:
            text = stamp + line
            pad = max(0, self.width - len(text))
            self.width = len(text)
            self.stream.write("\r" + text + " " * pad + ("\n" if job.done else ""))
        else:
            self.stream.write(stamp + line + "\n")
        self.stream.flush()


class _Notebook:
    def __init__(self, label: str) -> None:
        from IPython.display import HTML, display

        self._html = HTML
        self.label = label
        self.handle = display(HTML(""), display_id=True)

    def __call__(self, job: Job) -> None:
        p = job.progress
        bar = f'<progress value="{p.done}" max="{max(p.total, 1)}"></progress>' if p.total else ""
        self.handle.update(
            self._html(f"{bar} <code>{html.escape(describe(job, self.label))}</code>")
        )


def make_progress(progress: bool | ProgressCallback, label: str = "") -> ProgressCallback | None:
    """The renderer for ``wait(progress=...)``: True picks notebook or terminal."""
    if progress is False:
        return None
    if callable(progress):
        return progress
    if _in_notebook():
        try:
            return _Notebook(label)
        except Exception:  # IPython without display support: fall back to text
            pass
    return _Terminal(label, sys.stderr)
