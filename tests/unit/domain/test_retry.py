"""retryStrategy evaluation (spec §5.1): attempts, evaluateOnExit order, glob matching, case."""

from __future__ import annotations

import pytest

from batchd.domain.jobs import ServiceJobEvaluateOnExit, ServiceJobRetryStrategy
from batchd.domain.retry import glob_matches, should_retry

REASON = "Received status from SageMaker: AlgorithmError: diverged"


@pytest.mark.parametrize(
    ("pattern", "text", "matches"),
    [
        ("*", "", True),
        ("*", "anything at all", True),
        ("", "", True),
        ("", "x", False),
        ("abc", "abc", True),
        ("abc", "abcd", False),  # anchored at the end
        ("abc", "xabc", False),  # and at the start
        ("Received*", REASON, True),
        ("*diverged", REASON, True),
        ("*AlgorithmError*", REASON, True),
        ("*algorithmerror*", REASON, False),  # case-sensitive
        ("Received*Error*", REASON, True),
        ("a*b*c", "abc", True),
        ("a*b*c", "aXbYc", True),
        ("a*b*c", "acb", False),
        ("**", "x", True),
        # only '*' is special: regex and shell metacharacters are literal
        ("a.c", "abc", False),
        ("a.c", "a.c", True),
        ("a?c", "abc", False),
        ("a?c", "a?c", True),
        ("[ab]", "a", False),
        ("[ab]", "[ab]", True),
        ("a+", "aa", False),
        ("(x)|y", "y", False),
        ("\\*", "\\anything", True),
        ("^a$", "^a$", True),
        # '*' spans line breaks
        ("first*last", "first\nmiddle\nlast", True),
    ],
)
def test_a_glob_matches_the_whole_text_with_only_star_special(
    pattern: str, text: str, matches: bool
) -> None:
    assert glob_matches(pattern, text) is matches


def rules(*entries: tuple[str | None, str | None]) -> tuple[ServiceJobEvaluateOnExit, ...]:
    return tuple(ServiceJobEvaluateOnExit(action, reason) for action, reason in entries)


@pytest.mark.parametrize(
    ("attempts", "entries", "made", "reason", "retried"),
    [
        # attempts bound the total, the first attempt included
        (1, (), 1, REASON, False),
        (2, (), 1, REASON, True),
        (2, (), 2, REASON, False),
        (10, (), 9, REASON, True),
        (10, (), 10, REASON, False),
        (3, (), 5, REASON, False),
        # no entry matches: retried
        (3, rules(("EXIT", "Nothing*")), 1, REASON, True),
        # the first matching entry decides
        (3, rules(("EXIT", "Received*")), 1, REASON, False),
        (3, rules(("RETRY", "Received*")), 1, REASON, True),
        (3, rules(("RETRY", "*diverged"), ("EXIT", "*")), 1, REASON, True),
        (3, rules(("EXIT", "*diverged"), ("RETRY", "*")), 1, REASON, False),
        (3, rules(("EXIT", "Other*"), ("RETRY", "*")), 1, REASON, True),
        (3, rules(("RETRY", "Other*"), ("EXIT", "*")), 1, REASON, False),
        # an entry without onStatusReason matches any reason
        (3, rules(("EXIT", None)), 1, REASON, False),
        (3, rules(("EXIT", None), ("RETRY", "*")), 1, REASON, False),
        # an entry without action retries
        (3, rules((None, "*")), 1, REASON, True),
        # actions in any case; patterns case-sensitive
        (3, rules(("Retry", "*")), 1, REASON, True),
        (3, rules(("exit", "*")), 1, REASON, False),
        (3, rules(("eXiT", "*")), 1, REASON, False),
        (3, rules(("EXIT", "received*")), 1, REASON, True),
        # a RETRY entry cannot exceed attempts
        (2, rules(("RETRY", "*")), 2, REASON, False),
        # an empty reason
        (3, rules(("EXIT", "")), 1, "", False),
        (3, rules(("EXIT", "x*")), 1, "", True),
    ],
)
def test_retry_follows_attempts_then_the_first_matching_entry(
    attempts: int,
    entries: tuple[ServiceJobEvaluateOnExit, ...],
    made: int,
    reason: str,
    retried: bool,
) -> None:
    strategy = ServiceJobRetryStrategy(attempts=attempts, evaluate_on_exit=entries)
    assert should_retry(strategy, made, reason) is retried


@pytest.mark.parametrize("made", [0, 1, 5])
def test_without_a_retry_strategy_nothing_is_retried(made: int) -> None:
    assert should_retry(None, made, REASON) is False
