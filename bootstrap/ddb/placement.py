"""Seed placement (pure): where the seeded conversations fall in time, and what a seed run wrote.

The fixture conversations follow each other an hour apart from the seed
epoch; ``--synthetic GROUPS:MESSAGES`` conversations follow them. The epoch is
kept while every seeded time stays in the current year and none lies in the
future (patterns A and B read the current year only), so reruns write the same
keys. A ``SeedRecord`` (kept in the Postgres meta table by ``bootstrap.ddb.seed``)
says what a run wrote, so the next one can find what it no longer writes.

Assumes every seeded id is a uuid5 from ``bootstrap.fixtures``; nothing here
talks to a service.
"""

from __future__ import annotations

import itertools
import json
import logging
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Iterator, Mapping, Sequence

from ..errors import InputError
from ..fixtures.model import ConversationFixture, Fixtures, group_uuid, message_uuid, user_uuid
from ..meta import DDB_SEED_EPOCH, DDB_SEED_LAYOUT, DDB_SEED_PENDING
from .table import PARTITION_KEY, SORT_KEY, UserRef, format_time, group_item, message_item, message_pk

log = logging.getLogger(__name__)

# Seeded conversations follow each other with an hour between them, so that
# pattern B (newest first) has a well-defined order.
GAP = timedelta(minutes=60)
# Seeded times must fall into one calendar year (patterns A and B filter on it).
MAX_SEED_SPAN = timedelta(days=300)

SYNTHETIC_PREFIX = "synth"


@dataclass(frozen=True)
class SyntheticSpec:
    """``--synthetic GROUPS:MESSAGES``: generated conversations for load and scale tests."""

    groups: int
    messages: int

    def __str__(self) -> str:
        return f"{self.groups}:{self.messages}"

    @property
    def item_count(self) -> int:
        return self.groups * (self.messages + 2)

    def span(self) -> timedelta:
        # Group i starts i minutes after the first and sends one message a minute.
        return timedelta(minutes=self.groups - 1 + self.messages - 1)


def parse_synthetic(text: str) -> SyntheticSpec:
    match = re.fullmatch(r"\s*(\d+)\s*:\s*(\d+)\s*", text or "")
    if not match or int(match[1]) < 1 or int(match[2]) < 1:
        raise InputError(f"--synthetic {text!r}: expected GROUPS:MESSAGES, two whole numbers of at least 1, "
                         "e.g. 1000:100")
    spec = SyntheticSpec(int(match[1]), int(match[2]))
    if spec.span() > MAX_SEED_SPAN:
        raise InputError(f"--synthetic {text!r}: GROUPS + MESSAGES minutes must fit into {MAX_SEED_SPAN.days} days "
                         "so the seeded times stay within one year")
    return spec


@dataclass(frozen=True)
class SeedMessage:
    sender: UserRef
    after: timedelta  # after the conversation's start
    text: str


@dataclass(frozen=True)
class SeedConversation:
    """One conversation placed on the timeline: ``start`` is measured from the seed epoch."""

    group_uuid: str
    members: tuple[UserRef, UserRef]
    start: timedelta
    messages: tuple[SeedMessage, ...]

    @property
    def end(self) -> timedelta:
        return self.start + self.messages[-1].after

    def items(self, epoch: datetime) -> Iterator[dict[str, str]]:
        """Every message item, then both members' group items (each names the other member)."""
        for index, message in enumerate(self.messages):
            at = format_time(epoch + self.start + message.after)
            yield message_item(self.group_uuid, message_uuid(self.group_uuid, index), message.sender, message.text, at)
        last = self.messages[-1]
        last_at = format_time(epoch + self.end)
        first, second = self.members
        yield group_item(first, second, self.group_uuid, last.text, last_at)
        yield group_item(second, first, self.group_uuid, last.text, last_at)


def describe_seed(fixtures: Fixtures) -> str:
    """What seeding the fixtures writes, for refusals on prod."""
    conversations = fixtures.conversations
    messages = sum(len(conversation.messages) for conversation in conversations)
    return f"{len(conversations)} conversations: {messages} message items and {2 * len(conversations)} group items"


def fixture_conversations(
    conversations: Sequence[ConversationFixture], users: Mapping[str, UserRef]
) -> list[SeedConversation]:
    """The fixture conversations one after another, an hour apart; InputError names handles Postgres lacks."""
    missing = sorted({h for c in conversations for h in c.members if h not in users})
    if missing:
        raise InputError(f"users {', '.join(missing)} are not in Postgres; run `invoke db.seed` first")
    placed, start = [], timedelta(0)
    for conversation in conversations:
        messages = tuple(SeedMessage(users[m.sender], timedelta(minutes=m.minutes), m.text)
                         for m in conversation.messages)
        members = (users[conversation.members[0]], users[conversation.members[1]])
        placed.append(SeedConversation(conversation.group_uuid, members, start, messages))
        start = placed[-1].end + GAP
    return placed


def synthetic_user(number: int) -> UserRef:
    handle = f"{SYNTHETIC_PREFIX}_{number:05d}"
    return UserRef(user_uuid(handle), handle, f"Synthetic User {number:05d}")


def synthetic_group_uuid(number: int) -> str:
    return group_uuid(f"{SYNTHETIC_PREFIX}-{number:05d}")


def synthetic_conversations(spec: SyntheticSpec, start: timedelta) -> Iterator[SeedConversation]:
    """Group i between synth_i and synth_i+1, so most users have two groups; generated one at a time.

    Groups start a minute apart, so no user's two group items share a sort key.
    """
    for number in range(1, spec.groups + 1):
        members = (synthetic_user(number), synthetic_user(number + 1))
        messages = tuple(
            SeedMessage(members[index % 2], timedelta(minutes=index),
                        f"Synthetic message {index + 1} of {spec.messages} in group {number}")
            for index in range(spec.messages)
        )
        yield SeedConversation(synthetic_group_uuid(number), members, start + timedelta(minutes=number - 1), messages)


def seed_span(conversations: Sequence[ConversationFixture], synthetic: SyntheticSpec | None = None) -> timedelta:
    """From the epoch to the last seeded message (``fixture_conversations`` places them so)."""
    spans = [timedelta(minutes=conversation.span_minutes) for conversation in conversations]
    fixtures_end = sum(spans, timedelta(0)) + GAP * max(len(spans) - 1, 0)
    if synthetic is None:
        return fixtures_end
    return synthetic_start(conversations) + synthetic.span()


def synthetic_start(conversations: Sequence[ConversationFixture]) -> timedelta:
    """Where the synthetic conversations start: an hour after the last fixture conversation."""
    return seed_span(conversations) + GAP if conversations else timedelta(0)


def choose_epoch(recorded: str | None, now: datetime, span: timedelta) -> datetime:
    """When the seeded timeline starts: the recorded epoch while it still fits, else a new one.

    The recorded epoch fits when every seeded time (epoch .. epoch + span)
    falls in ``now``'s year and none lies in the future. A new epoch ends the
    timeline at ``now`` (to the minute), but never starts before 1 January,
    since patterns A and B only read the current year.
    """
    now = now.astimezone(timezone.utc)
    new_year = datetime(now.year, 1, 1, tzinfo=timezone.utc)
    previous = _parse_epoch(recorded)
    if previous is not None and new_year <= previous and previous + span <= now:
        return previous
    return max((now - span).replace(second=0, microsecond=0), new_year)


def seed_probe_key(conversations: Sequence[ConversationFixture], recorded_epoch: str | None) -> tuple[str, str] | None:
    """The key of the first seeded message: one GetItem tells whether the seeded data is (still) in the table."""
    epoch = _parse_epoch(recorded_epoch)
    if epoch is None or not conversations:
        return None
    first = conversations[0]
    return message_pk(first.group_uuid), format_time(epoch + timedelta(minutes=first.messages[0].minutes))


def epoch_is_current(recorded: str | None, conversations: Sequence[ConversationFixture],
                     synthetic: SyntheticSpec | None = None, now: datetime | None = None) -> bool:
    """Whether a seed run now would keep the ``recorded`` epoch (so the seeded items stay where they are)."""
    previous = _parse_epoch(recorded)
    span = seed_span(conversations, synthetic)
    return previous is not None and choose_epoch(recorded, now or datetime.now(timezone.utc), span) == previous


def _parse_epoch(text: str | None) -> datetime | None:
    try:
        moment = datetime.fromisoformat(text) if text else None
    except ValueError:
        return None
    if moment is None or moment.tzinfo is None:
        return None
    return moment.astimezone(timezone.utc)


@dataclass(frozen=True)
class SeededGroup:
    """A fixture group a seed wrote; without ``member_uuids`` its group items are found through the GSI."""

    group_uuid: str
    member_uuids: tuple[str, ...] = ()


@dataclass(frozen=True)
class SeedRecord:
    """What a seed run wrote, remembered in the Postgres meta table so the next run can clean up after it."""

    epoch: datetime
    conversation_ids: tuple[str, ...]
    fingerprint: str
    synthetic: SyntheticSpec | None = None
    synthetic_start: timedelta = timedelta(0)

    def meta_values(self) -> dict[str, str]:
        layout = {"conversations": list(self.conversation_ids), "fingerprint": self.fingerprint,
                  "synthetic": str(self.synthetic) if self.synthetic else None,
                  "synthetic_start_minutes": self.synthetic_start // timedelta(minutes=1)}
        return {DDB_SEED_EPOCH: self.epoch.isoformat(), DDB_SEED_LAYOUT: json.dumps(layout, sort_keys=True)}

    @classmethod
    def from_meta(cls, meta: Mapping[str, str]) -> SeedRecord | None:
        epoch = _parse_epoch(meta.get(DDB_SEED_EPOCH))
        if epoch is None:
            return None
        try:
            layout = json.loads(meta.get(DDB_SEED_LAYOUT) or "null")
            synthetic = parse_synthetic(layout["synthetic"]) if layout["synthetic"] else None
            start = timedelta(minutes=int(layout["synthetic_start_minutes"]))
            return cls(epoch, tuple(layout["conversations"]), layout["fingerprint"], synthetic, start)
        except (ValueError, TypeError, KeyError, InputError):
            log.debug("ignoring an unreadable %s in the meta table", DDB_SEED_LAYOUT)
            return None

    def pending_values(self) -> dict[str, str]:
        """This record as the one of a run in progress (see ``pending_in``)."""
        return {DDB_SEED_PENDING: json.dumps(self.meta_values(), sort_keys=True)}

    @classmethod
    def pending_in(cls, meta: Mapping[str, str]) -> SeedRecord | None:
        """The record of a seed run that started and did not finish, if any."""
        try:
            return cls.from_meta(json.loads(meta.get(DDB_SEED_PENDING) or "{}"))
        except (ValueError, TypeError):
            return None

    def fixture_groups(self) -> Iterator[SeededGroup]:
        yield from (SeededGroup(group_uuid(conversation_id)) for conversation_id in self.conversation_ids)


def stale_synthetic_keys(previous: SeedRecord, synthetic: SyntheticSpec | None, epoch: datetime,
                         start: timedelta) -> Iterator[tuple[str, str]]:
    """Keys the ``previous`` seed wrote for synthetic groups that this one (``synthetic`` from ``epoch``) does not.

    Computed, not read: synthetic items are a pure function of the record, and
    reading them back would cost a query per group.
    """
    if previous.synthetic is None:
        return
    old = synthetic_conversations(previous.synthetic, previous.synthetic_start)
    new = synthetic_conversations(synthetic, start) if synthetic else iter(())
    for before, now in itertools.zip_longest(old, new):
        if before is None:
            return
        keep = {key_of(item) for item in now.items(epoch)} if now else set()
        yield from (key for key in map(key_of, before.items(previous.epoch)) if key not in keep)


def key_of(item: Mapping[str, str]) -> tuple[str, str]:
    return item[PARTITION_KEY], item[SORT_KEY]
