"""Listing dead letters and sending them back to their consumer (the CLI's work)."""

from __future__ import annotations

from dataclasses import dataclass

from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from shop_common.events.consumer import DEAD_LETTER_HEADER_PREFIX
from shop_common.events.envelope import MSG_ID_HEADER, Event, MalformedEvent
from shop_common.events.streams import DeadLetterSpec


@dataclass(frozen=True)
class DeadLetter:
    sequence: int
    consumer: str
    subject: str
    reason: str
    deliveries: int
    dead_lettered_at: str
    event_id: str | None
    event_type: str | None
    data: bytes
    headers: dict[str, str]


async def list_dead_letters(
    js: JetStreamContext,
    spec: DeadLetterSpec,
    *,
    consumer: str | None = None,
    limit: int = 1000,
) -> list[DeadLetter]:
    """The dead letters still in the stream, oldest first (a redriven one is removed)."""
    try:
        info = await js.stream_info(spec.stream)
    except NotFoundError:
        return []
    prefix = spec.dead_subject(consumer) if consumer else spec.dead_subject("")
    found: list[DeadLetter] = []
    if info.state.messages == 0:
        return []
    sequence = max(info.state.first_seq, 1)
    while sequence <= info.state.last_seq and len(found) < limit:
        try:
            raw = await js.get_msg(spec.stream, seq=sequence)
        except NotFoundError:
            sequence += 1
            continue  # deleted (redriven), or a gap
        sequence += 1
        subject = raw.subject or ""
        if not (subject == prefix if consumer else subject.startswith(prefix)):
            continue
        found.append(_letter(raw.seq or 0, subject, raw.data or b"", dict(raw.headers or {})))
    return found


def _letter(sequence: int, subject: str, data: bytes, headers: dict[str, str]) -> DeadLetter:
    try:
        event: Event | None = Event.from_json(data)
    except MalformedEvent:
        event = None
    return DeadLetter(
        sequence=sequence,
        consumer=headers.get(DEAD_LETTER_HEADER_PREFIX + "Consumer", subject.rsplit(".", 1)[-1]),
        subject=headers.get(DEAD_LETTER_HEADER_PREFIX + "Subject", ""),
        reason=headers.get(DEAD_LETTER_HEADER_PREFIX + "Reason", ""),
        deliveries=int(headers.get(DEAD_LETTER_HEADER_PREFIX + "Deliveries", "0") or 0),
        dead_lettered_at=headers.get(DEAD_LETTER_HEADER_PREFIX + "At", ""),
        event_id=str(event.id) if event else None,
        event_type=event.type if event else None,
        data=data,
        headers=headers,
    )


async def redrive(js: JetStreamContext, spec: DeadLetterSpec, letter: DeadLetter) -> None:
    """Send one dead letter back to its consumer (only to it), then remove it.

    The redrive message's id is the dead letter's sequence: a redrive that stopped
    between the two steps and is run again is not delivered twice.
    """
    headers = {
        name: value
        for name, value in letter.headers.items()
        if name != MSG_ID_HEADER and name != DEAD_LETTER_HEADER_PREFIX + "Reason"
    }
    headers[MSG_ID_HEADER] = f"redrive:{spec.stream}:{letter.sequence}"
    await js.publish(spec.redrive_subject(letter.consumer), letter.data, headers=headers)
    try:
        await js.delete_msg(spec.stream, letter.sequence)
    except NotFoundError:
        pass  # removed by a redrive running at the same time
