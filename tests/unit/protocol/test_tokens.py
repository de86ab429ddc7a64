"""Paging tokens: they round-trip, and anything tampered, foreign or mistyped is refused."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from batchd.errors import InvalidParameter
from batchd.protocol.tokens import decode_token, encode_token

SCOPE = "ListServiceJobs/abc"
TYPES = (int, str)
CURSOR = [1_700_000_000_000, "00000000-0000-4000-8000-000000000001"]


def forged(payload: Any) -> str:
    raw = json.dumps(payload).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.parametrize(
    ("cursor", "types"),
    [
        (CURSOR, TYPES),
        ([0], (int,)),
        ([-(2**63)], (int,)),
        ([2**63 - 1], (int,)),
        (["", "é/ü\u2603"], (str, str)),
        ([], ()),
    ],
)
def test_a_token_decodes_to_its_cursor(cursor: list[Any], types: tuple[type, ...]) -> None:
    token = encode_token(SCOPE, cursor)
    assert "=" not in token and "+" not in token and "/" not in token  # URL- and query-safe
    assert decode_token(SCOPE, token, types) == cursor


@given(created=st.integers(-(2**63), 2**63 - 1), job_id=st.text(max_size=40))
def test_any_cursor_of_the_listing_shape_round_trips(created: int, job_id: str) -> None:
    token = encode_token(SCOPE, [created, job_id])
    assert decode_token(SCOPE, token, TYPES) == [created, job_id]


GOOD = encode_token(SCOPE, CURSOR)


@pytest.mark.parametrize(
    "token",
    [
        pytest.param("", id="empty"),
        pytest.param("not a token", id="spaces"),
        pytest.param(GOOD + "!", id="outside the alphabet"),
        pytest.param(GOOD[:-3], id="truncated"),
        pytest.param(GOOD[:10] + ("A" if GOOD[10] != "A" else "B") + GOOD[11:], id="one char"),
        pytest.param(GOOD + "====", id="over-padded"),
        pytest.param(forged({"v": 1}), id="not a list"),
        pytest.param(forged([1, SCOPE]), id="too short"),
        pytest.param(forged([2, SCOPE, CURSOR]), id="another version"),
        pytest.param(forged([1, "ListServiceJobs/other", CURSOR]), id="another scope"),
        pytest.param(forged([1, SCOPE, "cursor"]), id="cursor not a list"),
        pytest.param(forged([1, SCOPE, CURSOR[:1]]), id="too few values"),
        pytest.param(forged([1, SCOPE, [*CURSOR, 3]]), id="too many values"),
        pytest.param(forged([1, SCOPE, [str(CURSOR[0]), CURSOR[1]]]), id="string for int"),
        pytest.param(forged([1, SCOPE, [1.5, CURSOR[1]]]), id="float for int"),
        pytest.param(forged([1, SCOPE, [True, CURSOR[1]]]), id="bool for int"),
        pytest.param(forged([1, SCOPE, [CURSOR[0], None]]), id="null for str"),
        pytest.param(forged([1, SCOPE, [2**63, CURSOR[1]]]), id="beyond BIGINT"),
        pytest.param(forged([1, SCOPE, [-(2**63) - 1, CURSOR[1]]]), id="below BIGINT"),
        pytest.param(base64.urlsafe_b64encode(b"\xff\xfe").decode(), id="not UTF-8"),
        pytest.param(forged([1, SCOPE, CURSOR])[:-1] + "\u00e9", id="non-ASCII"),
        pytest.param(base64.urlsafe_b64encode(b"[" * 100_000).decode(), id="deeply nested"),
    ],
)
def test_a_bad_token_is_refused_as_an_invalid_next_token(token: str) -> None:
    with pytest.raises(InvalidParameter, match=r"^Invalid nextToken"):
        decode_token(SCOPE, token, TYPES)


def test_a_long_bad_token_is_shown_cut_short() -> None:
    with pytest.raises(InvalidParameter) as info:
        decode_token(SCOPE, "x" * 500, TYPES)
    assert info.value.message == "Invalid nextToken: " + "x" * 37 + "..."


@pytest.mark.parametrize("scope", ["DescribeJobQueues", "ListQuotaShares/q2", SCOPE + "x"])
def test_a_token_is_refused_in_any_other_scope(scope: str) -> None:
    with pytest.raises(InvalidParameter):
        decode_token(scope, GOOD, TYPES)
