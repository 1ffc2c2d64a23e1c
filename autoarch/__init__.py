"""autoarch: neural architecture search for small, accurate models on edge devices."""

from __future__ import annotations

__version__ = "0.1.0"

from autoarch.exceptions import AutoArchError, ConfigError, DataError, SpaceError, TrainingError  # noqa: E402
from autoarch.search import SearchResult, load, search  # noqa: E402

__all__ = ["__version__", "search", "load", "SearchResult", "AutoArchError", "DataError", "SpaceError",
           "ConfigError", "TrainingError"]
