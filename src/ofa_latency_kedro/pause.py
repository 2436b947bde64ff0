"""Named points in the code where a test can stop this process, to kill it exactly there.

Only tests arm them. A process started with ``OFA_PAUSE_AT=<pattern>[@<n>]`` and
``OFA_PAUSE_MARKER=<file>`` in its environment stops the ``n``-th time (the first by default)
it reaches a point whose name matches ``<pattern>`` (shell-style, as in `fnmatch`): it writes
the point's name to the marker file and sleeps there, for the test to SIGKILL it. A process
that nobody kills within `PAUSE_LIMIT_S` raises `RuntimeError` instead of hanging.
Without ``OFA_PAUSE_AT`` (every real run), `reached` returns at once.

The points: ``atomic_write.opened:<file name>`` (the temporary file exists, empty),
``atomic_write.written:<file name>`` (it holds the whole new content, not yet renamed),
``atomic_write.replaced:<file name>`` (renamed over the target) and
``latency_log.appended:<file name>`` (a group of rows is written and fsynced).
"""

from __future__ import annotations

import os
import time
from fnmatch import fnmatchcase

PAUSE_ENV = "OFA_PAUSE_AT"
MARKER_ENV = "OFA_PAUSE_MARKER"
PAUSE_LIMIT_S = 600

_hits = 0


def _spec() -> tuple[str, int] | None:
    text = os.environ.get(PAUSE_ENV)
    if not text:
        return None
    pattern, _, count = text.partition("@")
    try:
        nth = int(count) if count else 1
    except ValueError:
        raise ValueError(f"{PAUSE_ENV}={text!r}: write <pattern>[@<n>], n a whole number") from None
    return pattern, nth


def reached(point: str) -> None:
    """Mark that the process is at ``point``; stop here when a test armed it."""
    global _hits  # noqa: PLW0603 (one counter per process, as the environment is)
    spec = _spec()
    if spec is None or not fnmatchcase(point, spec[0]):
        return
    _hits += 1
    if _hits != spec[1]:
        return
    marker = os.environ.get(MARKER_ENV)
    if not marker:
        raise ValueError(f"{PAUSE_ENV} is set but {MARKER_ENV} names no marker file")
    partial = f"{marker}.part"
    with open(partial, "w") as handle:
        handle.write(point)
    os.replace(partial, marker)
    time.sleep(PAUSE_LIMIT_S)
    raise RuntimeError(f"paused at {point} for {PAUSE_LIMIT_S} s and nobody killed the process")
