"""Search spaces: families of networks that a controller samples from.

``get_space("mlp")`` / ``get_space("cnn")`` return the built-in spaces; write your own by subclassing
:class:`SearchSpace` (``suggest`` + ``build`` + ``grid``).
"""

from __future__ import annotations

import inspect

from autoarch.search_spaces._base import ACTIVATIONS, CONNECTIVITY, Architecture, SearchSpace
from autoarch.search_spaces.cnn import CNNSpace
from autoarch.search_spaces.mlp import MLPSpace

from autoarch.exceptions import SpaceError, did_you_mean

__all__ = ["ACTIVATIONS", "CONNECTIVITY", "Architecture", "SearchSpace", "MLPSpace", "CNNSpace", "get_space",
           "SPACES"]

SPACES: dict[str, type[SearchSpace]] = {"mlp": MLPSpace, "cnn": CNNSpace}


def get_space(name: str | SearchSpace, input_kind: str = "tabular", *, augment: bool | None = None) -> SearchSpace:
    """Return a search space instance: by name, ``"auto"`` (cnn for images, mlp otherwise) or as given.

    ``augment`` (for a space built by name) switches the search over training augmentation on or off where the
    space has one (the cnn space); None keeps the space's default. A given instance is returned as it is.
    """
    if isinstance(name, SearchSpace):
        return name
    if name == "auto":
        name = "cnn" if input_kind == "image" else "mlp"
    if name not in SPACES:
        choices = ["auto", *SPACES]
        raise SpaceError(f"space must be one of {choices}, but got {name!r}.{did_you_mean(name, choices)}")
    cls = SPACES[name]
    space = cls(augment=augment) if augment is not None and "augment" in inspect.signature(cls).parameters else cls()
    if input_kind not in space.input_kinds:
        raise SpaceError(f"the {name} space does not take {input_kind} input; use --space mlp or --space auto.")
    return space
