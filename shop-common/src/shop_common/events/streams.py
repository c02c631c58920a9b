"""Streams a service declares, created or brought up to date at start (idempotent)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from nats.js import JetStreamContext
from nats.js.api import StorageType, StreamConfig
from nats.js.errors import BadRequestError

logger = logging.getLogger(__name__)

# JetStream's "stream name already in use" (with another configuration).
_STREAM_NAME_IN_USE = 10058
DUPLICATE_WINDOW_SECONDS = 120.0
DAY = 86400.0


@dataclass(frozen=True)
class StreamSpec:
    """A stream: its name, the subjects it stores, how long it keeps them.

    `duplicate_window` is how long JetStream remembers message ids: a relay that
    publishes a row again within it (it crashed before marking the row) is not stored
    twice. Consumers' inboxes catch a repeat after it.
    """

    name: str
    subjects: tuple[str, ...]
    duplicate_window: float = DUPLICATE_WINDOW_SECONDS
    max_age: float = 30 * DAY
    replicas: int = 1

    def config(self) -> StreamConfig:
        return StreamConfig(
            name=self.name,
            subjects=list(self.subjects),
            storage=StorageType.FILE,
            duplicate_window=self.duplicate_window,
            max_age=self.max_age,
            num_replicas=self.replicas,
        )


@dataclass(frozen=True)
class DeadLetterSpec:
    """Where events go that a consumer could not apply, and where a redrive sends them.

    One stream for every consumer: `<prefix>.dead.<consumer>` holds the dead letters,
    `<prefix>.redrive.<consumer>` the ones sent back to that consumer (only to it).
    """

    stream: str = "DEAD_LETTERS"
    prefix: str = "dead_letters"
    max_age: float = 90 * DAY

    def dead_subject(self, consumer: str) -> str:
        return f"{self.prefix}.dead.{consumer}"

    def redrive_subject(self, consumer: str) -> str:
        return f"{self.prefix}.redrive.{consumer}"

    def stream_spec(self) -> StreamSpec:
        return StreamSpec(name=self.stream, subjects=(f"{self.prefix}.>",), max_age=self.max_age)


async def ensure_streams(js: JetStreamContext, specs: list[StreamSpec]) -> None:
    """Create each stream, or update it to the declared configuration (several replicas
    starting at once all succeed)."""
    for spec in specs:
        config = spec.config()
        try:
            await js.add_stream(config)
        except BadRequestError as exc:
            if exc.err_code != _STREAM_NAME_IN_USE:
                raise
            await js.update_stream(config)
            logger.info("stream %s updated", spec.name)
