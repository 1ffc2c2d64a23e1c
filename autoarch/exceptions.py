"""Exceptions raised by autoarch.

Every error a user can cause derives from :class:`AutoArchError`; the CLI prints its message as one line and
exits with status 2. Messages state the rule, what was received, and how to fix it.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = ["AutoArchError", "DataError", "SpaceError", "ConfigError", "TrainingError", "TimeLimitError",
           "SearchFailedError", "LimitsUnmetError", "did_you_mean"]


class AutoArchError(Exception):
    """Base class of the errors autoarch raises for bad input or an impossible request."""


class DataError(AutoArchError):
    """The data cannot be loaded or does not suit the task (missing file, NaN, too few samples, ...)."""


class SpaceError(AutoArchError):
    """A search space or an architecture is invalid."""


class ConfigError(AutoArchError):
    """An option has an invalid value (unknown metric, K < 2, ...)."""


class TrainingError(AutoArchError):
    """Training a candidate failed (NaN loss, ...). The search records it as a failed trial and goes on."""


class SearchFailedError(AutoArchError):
    """A search ran but has nothing to ship: no candidate completed. A runtime failure (the CLI exits 1), not bad
    input, though the message still says what to change."""


class LimitsUnmetError(ConfigError):
    """Every candidate of a search was rejected before training by a --max-* limit: the limits are bad input (exit
    2), and the message gives the smallest value seen of each."""


class TimeLimitError(TrainingError):
    """Training ran past its deadline (``--trial-timeout``, or the search's ``--timeout`` reached mid-trial)."""


def did_you_mean(value: str, choices: Iterable[str]) -> str:
    """Return ``" Did you mean 'x'?"`` for the closest choice, or ``""`` when nothing is close."""
    close = difflib.get_close_matches(str(value), list(choices), n=1, cutoff=0.5)
    return f" Did you mean '{close[0]}'?" if close else ""
