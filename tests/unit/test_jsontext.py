"""batchd.jsontext: orjson's speed without refusing what clients send."""

from __future__ import annotations

import json
from typing import Any

import pytest

from batchd import jsontext

LONE = "\ud800"


@pytest.mark.parametrize(
    "value",
    [
        {"b": 1, "a": [True, None, 1.5, "é"]},
        {"tag": LONE},  # a lone surrogate, as a request decoded by the fallback holds it
        {"priority": 2**64},  # beyond 64 bits
    ],
)
def test_every_dump_reads_back_as_the_same_value(value: Any) -> None:
    assert jsontext.loads(jsontext.dumps(value)) == value
    assert jsontext.loads(jsontext.dumps_text(value)) == value
    assert jsontext.loads(jsontext.dumps_pretty(value)) == value
    assert jsontext.loads(jsontext.dumps(value, sort_keys=True)) == value


@pytest.mark.parametrize("value", [{"b": 1, "a": 2}, {"b": LONE, "a": 2**64}])
def test_sorted_dumps_are_the_same_text_whatever_the_key_order(value: dict[str, Any]) -> None:
    reordered = dict(reversed(value.items()))
    assert jsontext.dumps(value, sort_keys=True) == jsontext.dumps(reordered, sort_keys=True)
    assert jsontext.dumps(value, sort_keys=True).startswith(b'{"a":')


def test_a_lone_surrogate_escape_from_a_client_is_decoded_not_refused() -> None:
    assert jsontext.loads(b'{"jobQueues": ["\\ud800"]}') == {"jobQueues": [LONE]}


def test_pretty_text_is_indented() -> None:
    assert jsontext.dumps_pretty({"a": [1]}) == '{\n  "a": [\n    1\n  ]\n}'


@pytest.mark.parametrize("text", [b"{", b'{"a": }', b"\xff", "[1,]"])
def test_invalid_text_is_refused_with_the_standard_librarys_message(text: str | bytes) -> None:
    with pytest.raises(ValueError) as raised:
        jsontext.loads(text)
    if isinstance(raised.value, json.JSONDecodeError):
        with pytest.raises(json.JSONDecodeError) as expected:
            json.loads(text)
        assert str(raised.value) == str(expected.value)
