"""The bench's own lines on standard output, told apart from the tables by a prefix."""

from __future__ import annotations

import sys


class BenchError(Exception):
    """The bench cannot go on; the message says why and what to do. It is raised inside
    tasks too, where SystemExit would escape the event loop instead of unwinding it."""


def say(line: str) -> None:
    sys.stdout.write(f"[bench] {line}\n")
    sys.stdout.flush()
