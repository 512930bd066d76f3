"""Seeds for moto's random generator that make it draw the ids we ask for.

moto's server has no API to set a user pool's id, a client's id or a user's
``sub``: it draws each from one ``random.Random`` (``uuid4`` = 128 random
bits), which ``/moto-api/seed?a=<int>`` seeds (``bootstrap.cognito.MotoIds``).
Python seeds from an int through MT19937's ``init_by_array`` with the int's
32-bit words as the key, and with a key of 624 words every state the
generator can be in is reachable. So for wanted ids we build the generator
state whose first outputs are exactly those ids' words, and then the key that
seeding turns into that state: seeding moto with it and creating the pool,
client or user gives back the saved id.

Such a seed has about 6,000 decimal digits, more than Python 3.11+ converts
from text by default (``sys.int_info.default_max_str_digits``), so the moto
servers we start run with ``-X int_max_str_digits=0`` (embedded) or
``PYTHONINTMAXSTRDIGITS=0`` (docker). A moto that refuses the seed gives new
ids, and the caller says so. Pure; tested against ``random.Random`` itself.
"""

from __future__ import annotations

import uuid
from typing import Iterable

N, M = 624, 397
_MASK = 0xFFFFFFFF
_UPPER, _LOWER, _MATRIX_A = 0x80000000, 0x7FFFFFFF, 0x9908B0DF
# Python's init_by_array starts from init_genrand(19650218).
_INIT_SEED = 19650218


def seed_for_uuids(wanted: Iterable[str | uuid.UUID]) -> int:
    """A seed after which ``uuid4()`` (``UUID(int=getrandbits(128), version=4)``) returns ``wanted`` in order.

    Each wanted id must be a version-4 UUID (as every id moto drew is); at most 56 of them.
    """
    words: list[int] = []
    for value in wanted:
        number = uuid.UUID(str(value)).int
        words += [(number >> (32 * k)) & _MASK for k in range(4)]  # getrandbits fills the low word first
    return seed_for_words(words)


def seed_for_words(words: list[int]) -> int:
    """A seed after which ``getrandbits(32)`` returns ``words`` in order (at most N - M = 227 of them)."""
    if len(words) > N - M:
        raise ValueError(f"at most {N - M} words can be chosen at once, not {len(words)}")
    state = _state_for(words)
    return _key_for(_before_second_pass(state))


def _state_for(words: list[int]) -> list[int]:
    """A generator state (after seeding) whose first twist yields ``words``; the rest is zeros."""
    state = [0] * N
    state[0] = _UPPER  # init_by_array always ends with this
    for i, word in enumerate(words):
        y = (state[i] & _UPPER) | (state[i + 1] & _LOWER)
        state[i + M] = _untemper(word) ^ (y >> 1) ^ (_MATRIX_A if y & 1 else 0)
    return state


def _before_second_pass(final: list[int]) -> list[int]:
    """Undo init_by_array's second pass (i = 2 … N-1, then 1): the state its first pass must leave."""
    def mix(v: int) -> int:
        return ((v ^ (v >> 30)) * 1566083941) & _MASK

    before = [0] * N
    before[1] = ((final[1] + 1) & _MASK) ^ mix(final[N - 1])
    before[2] = ((final[2] + 2) & _MASK) ^ mix(before[1])
    for i in range(3, N):
        before[i] = ((final[i] + i) & _MASK) ^ mix(final[i - 1])
    return before


def _key_for(target: list[int]) -> int:
    """The 624-word key whose first pass of init_by_array leaves ``target`` (index 0 aside), as one int."""
    def mix(v: int) -> int:
        return ((v ^ (v >> 30)) * 1664525) & _MASK

    state = _init_genrand(_INIT_SEED)
    key = [0] * N
    state[1] = (state[1] ^ mix(state[0])) & _MASK  # key[0] = 0: position 1 is set again at the end
    for i in range(2, N):
        key[i - 1] = (target[i] - (state[i] ^ mix(state[i - 1])) - (i - 1)) & _MASK
        state[i] = target[i]
    state[0] = state[N - 1]
    key[N - 1] = (target[1] - (state[1] ^ mix(state[0])) - (N - 1)) & _MASK
    # A zero top word would shorten the key (the int's length decides it): one chance in 2**32.
    if key[N - 1] == 0:
        raise ValueError("no 624-word key for this state")
    return sum(word << (32 * index) for index, word in enumerate(key))


def _init_genrand(seed: int) -> list[int]:
    state = [0] * N
    state[0] = seed
    for i in range(1, N):
        state[i] = (1812433253 * (state[i - 1] ^ (state[i - 1] >> 30)) + i) & _MASK
    return state


def _untemper(y: int) -> int:
    """The inverse of MT19937's output tempering."""
    y ^= y >> 18
    y ^= (y << 15) & 0xEFC60000
    x = y
    for _ in range(5):
        x = y ^ ((x << 7) & 0x9D2C5680)
    y = x & _MASK
    x = y
    for _ in range(3):
        x = y ^ (x >> 11)
    return x & _MASK


def decimal_text(number: int) -> str:
    """``number`` in decimal, also past the digits ``str()`` converts by default (4,300 since Python 3.11)."""
    chunk = 10 ** 1000
    parts = []
    while number >= chunk:
        number, low = divmod(number, chunk)
        parts.append(f"{low:01000d}")
    return str(number) + "".join(reversed(parts))
