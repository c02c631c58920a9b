"""The bench's own lines on standard output, told apart from the tables by a prefix."""

from __future__ import annotations

import sys


def say(line: str) -> None:
    sys.stdout.write(f"[bench] {line}\n")
    sys.stdout.flush()
