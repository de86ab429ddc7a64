"""Whether a failed attempt is retried: ``retryStrategy`` with ``evaluateOnExit``."""

from __future__ import annotations

import functools
import re

from batchd.domain.jobs import RetryAction, ServiceJobRetryStrategy

__all__ = ["glob_matches", "should_retry"]


@functools.lru_cache(maxsize=1024)
def _compile(pattern: str) -> re.Pattern[str]:
    # Only '*' is special (any run of characters); everything else is literal (spec §5.1).
    return re.compile("".join(".*" if c == "*" else re.escape(c) for c in pattern), re.DOTALL)


def glob_matches(pattern: str, text: str) -> bool:
    return _compile(pattern).fullmatch(text) is not None


def should_retry(strategy: ServiceJobRetryStrategy | None, attempts_made: int, reason: str) -> bool:
    """Retry when attempts remain and the first matching entry says RETRY, or none matches."""
    if strategy is None or attempts_made >= strategy.attempts:
        return False
    for entry in strategy.evaluate_on_exit:
        if entry.on_status_reason is None or glob_matches(entry.on_status_reason, reason):
            return (entry.action or RetryAction.RETRY).upper() == RetryAction.RETRY
    return True
