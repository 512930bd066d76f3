"""DynamoDB items as JSON lines: binary values survive, equal items and keys compare equal."""

from __future__ import annotations

import json

from bootstrap.states.items import digest_of, from_json_item, item_line, item_of_line, key_of

ITEM = {"pk": {"S": "MSG#g"}, "sk": {"S": "2024"}, "blob": {"B": b"\x00\xff"},
        "nested": {"M": {"set": {"BS": [b"a", b"b"]}, "list": {"L": [{"N": "1"}, {"B": b"c"}]}}}}


def test_an_item_line_is_the_export_format_and_comes_back_whole() -> None:
    line = item_line(ITEM)
    assert "\n" not in line
    assert from_json_item(json.loads(line)["Item"]) == ITEM


def test_keys_and_digests_ignore_attribute_and_set_order() -> None:
    reordered = {"sk": ITEM["sk"], "nested": {"M": {"list": ITEM["nested"]["M"]["list"],
                                                     "set": {"BS": [b"b", b"a"]}}},
                 "blob": ITEM["blob"], "pk": ITEM["pk"]}
    assert key_of(reordered, ["pk", "sk"]) == key_of(ITEM, ["pk", "sk"])
    assert digest_of(reordered) == digest_of(ITEM)
    assert digest_of({**ITEM, "extra": {"S": "x"}}) != digest_of(ITEM)


def test_a_line_comes_back_as_its_item_whether_or_not_it_holds_binary_values() -> None:
    plain = {"pk": {"S": 'a "B": lookalike'}, "n": {"N": "1"}, "l": {"L": [{"M": {"x": {"SS": ["y"]}}}]}}
    assert item_of_line(item_line(plain)) == plain
    assert item_of_line(item_line(ITEM)) == ITEM
    # another tool's spacing: the binary value is still decoded
    spaced = json.dumps({"Item": {"pk": {"S": "k"}, "blob": {"B": "AP8="}}}, indent=1)
    assert item_of_line(spaced) == {"pk": {"S": "k"}, "blob": {"B": b"\x00\xff"}}
