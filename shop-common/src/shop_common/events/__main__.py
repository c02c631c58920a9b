"""Dead letters from the command line.

    python -m shop_common.events dead-letters [--consumer NAME]
    python -m shop_common.events redrive [--consumer NAME] [--sequence N ...]

NATS_URL as the services read it (default: make run's server on 127.0.0.1:5004).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

import orjson

from shop_common.events.dead_letters import DeadLetter, list_dead_letters, redrive
from shop_common.events.runtime import connect_nats
from shop_common.events.streams import DeadLetterSpec

DEFAULT_NATS_URL = "nats://127.0.0.1:5004"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m shop_common.events")
    parser.add_argument("--nats-url", default=os.environ.get("NATS_URL") or DEFAULT_NATS_URL)
    parser.add_argument("--stream", default=DeadLetterSpec.stream, help="dead-letter stream")
    parser.add_argument("--prefix", default=DeadLetterSpec.prefix, help="its subject prefix")
    commands = parser.add_subparsers(dest="command", required=True)
    listing = commands.add_parser("dead-letters", help="list the dead letters, oldest first")
    listing.add_argument("--consumer", help="only this consumer's")
    listing.add_argument("--limit", type=int, default=1000)
    again = commands.add_parser("redrive", help="send dead letters back to their consumer")
    again.add_argument("--consumer", help="only this consumer's")
    again.add_argument("--sequence", type=int, action="append", help="only these (repeatable)")
    return parser


def _line(letter: DeadLetter) -> str:
    return orjson.dumps(
        {
            "sequence": letter.sequence,
            "consumer": letter.consumer,
            "event_id": letter.event_id,
            "type": letter.event_type,
            "subject": letter.subject,
            "deliveries": letter.deliveries,
            "reason": letter.reason,
            "dead_lettered_at": letter.dead_lettered_at,
        }
    ).decode()


async def _main(args: argparse.Namespace) -> int:
    spec = DeadLetterSpec(stream=args.stream, prefix=args.prefix)
    nc = await asyncio.wait_for(connect_nats(args.nats_url, name="events-cli"), 10)
    try:
        js = nc.jetstream()
        limit = args.limit if args.command == "dead-letters" else 100_000
        letters = await list_dead_letters(js, spec, consumer=args.consumer, limit=limit)
        if args.command == "dead-letters":
            for letter in letters:
                sys.stdout.write(_line(letter) + "\n")
            sys.stderr.write(f"{len(letters)} dead letter(s)\n")
            return 0
        chosen = [
            letter
            for letter in letters
            if not args.sequence or letter.sequence in set(args.sequence)
        ]
        for letter in chosen:
            await redrive(js, spec, letter)
            sys.stdout.write(_line(letter) + "\n")
        sys.stderr.write(f"{len(chosen)} dead letter(s) redriven\n")
        return 0
    finally:
        await nc.close()


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return asyncio.run(_main(args))
    except TimeoutError:
        sys.stderr.write(f"NATS at {args.nats_url} did not answer\n")
        return 2


if __name__ == "__main__":
    sys.exit(main())
