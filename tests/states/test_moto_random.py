"""Seeds solved for wanted ids: checked against Python's own generator (moto's is a ``random.Random``)."""

from __future__ import annotations

import random
import uuid

import pytest

from bootstrap.states.moto_random import decimal_text, seed_for_uuids, seed_for_words


def _draw_uuids(seed: int, count: int) -> list[uuid.UUID]:
    generator = random.Random()
    generator.seed(seed)
    return [uuid.UUID(int=generator.getrandbits(128), version=4) for _ in range(count)]


@pytest.mark.parametrize("count", [1, 2, 56])
def test_the_seed_makes_the_generator_draw_the_wanted_uuids(count: int) -> None:
    wanted = [uuid.uuid4() for _ in range(count)]
    assert _draw_uuids(seed_for_uuids(wanted), count) == wanted


def test_words_are_drawn_in_order_and_too_many_are_refused() -> None:
    words = [0, 0xFFFFFFFF, 12345]
    generator = random.Random()
    generator.seed(seed_for_words(words))
    assert [generator.getrandbits(32) for _ in words] == words
    with pytest.raises(ValueError, match="at most 227"):
        seed_for_words([1] * 228)


def test_a_moto_client_id_is_the_start_of_the_uuid_drawn() -> None:
    client_id = uuid.uuid4().hex[:26]
    drawn = _draw_uuids(seed_for_uuids([uuid.UUID(hex=client_id + "000000")]), 1)[0]
    assert drawn.hex.startswith(client_id)


def test_decimal_text_writes_numbers_str_refuses() -> None:
    number = seed_for_uuids([uuid.uuid4()])
    text = decimal_text(number)
    assert len(text) > 4300 and text.isdigit()
    assert sum(int(digit) for digit in text) % 9 == number % 9  # cheap check without int(text)
    assert decimal_text(0) == "0" and decimal_text(10 ** 1000) == "1" + "0" * 1000
