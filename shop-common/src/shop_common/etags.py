"""Entity tags and the If-Match / If-None-Match comparisons of RFC 9110 (sections 8.8.3, 13.1)."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

# entity-tag = [ "W/" ] DQUOTE *etagc DQUOTE, etagc = %x21 / %x23-7E / obs-text
_ENTITY_TAG = re.compile(r'[ \t]*(W/)?"([\x21\x23-\x7e\x80-\xff]*)"[ \t]*(?:,|$)')
_EMPTY_ELEMENT = re.compile(r"[ \t]*,")


def entity_tag(resource_id: uuid.UUID, version: int) -> str:
    """A strong tag; the version changes on every write, the id keeps tags of resources apart."""
    return f'"{resource_id.hex}-{version}"'


@dataclass(frozen=True, slots=True)
class EntityTag:
    opaque: str
    weak: bool


@dataclass(frozen=True, slots=True)
class Condition:
    """A parsed If-Match or If-None-Match field: `*`, a list of tags, or unparsable."""

    any: bool
    tags: tuple[EntityTag, ...]
    valid: bool = True

    def matches_strongly(self, etag: str) -> bool:
        """If-Match: a weak tag never matches; an unparsable field matches nothing."""
        if not self.valid:
            return False
        if self.any:
            return True
        current = _parse_one(etag)
        return any(not tag.weak and tag.opaque == current.opaque for tag in self.tags)

    def matches_weakly(self, etag: str) -> bool:
        """If-None-Match: tags compare by their opaque part, weak or not."""
        if not self.valid:
            return False
        if self.any:
            return True
        current = _parse_one(etag)
        return any(tag.opaque == current.opaque for tag in self.tags)


def parse_condition(values: list[str]) -> Condition | None:
    """The field made of every line of the header; None when the header is absent."""
    if not values:
        return None
    text = ", ".join(values)
    if text.strip() == "*":
        return Condition(any=True, tags=())
    tags: list[EntityTag] = []
    position = 0
    while position < len(text):
        empty = _EMPTY_ELEMENT.match(text, position)
        if empty:  # RFC 9110 5.6.1: empty list elements are ignored
            position = empty.end()
            continue
        if not text[position:].strip():
            break
        match = _ENTITY_TAG.match(text, position)
        if match is None:
            return Condition(any=False, tags=(), valid=False)
        tags.append(EntityTag(opaque=match.group(2), weak=match.group(1) is not None))
        position = match.end()
    return Condition(any=False, tags=tuple(tags), valid=bool(tags))


def _parse_one(etag: str) -> EntityTag:
    weak = etag.startswith("W/")
    return EntityTag(opaque=etag[2:].strip('"') if weak else etag.strip('"'), weak=weak)
