"""autoarch: neural architecture search for small, accurate models on edge devices.

``autoarch.search`` and ``autoarch.load`` import torch on first use, so that light entry points (the CLI's
help, ``autoarch predict``) start without it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from autoarch.exceptions import AutoArchError, ConfigError, DataError, SpaceError, TrainingError

__version__ = "0.1.0"

__all__ = ["__version__", "search", "load", "export_trial", "SearchResult", "AutoArchError", "DataError", "SpaceError",
           "ConfigError", "TrainingError"]

if TYPE_CHECKING:
    from autoarch.runner import SearchResult, export_trial, load, search


def __getattr__(name: str) -> Any:
    if name in ("search", "load", "export_trial", "SearchResult"):
        from autoarch import runner

        return getattr(runner, name)
    raise AttributeError(f"module 'autoarch' has no attribute {name!r}")
