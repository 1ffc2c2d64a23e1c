"""Search spaces: families of networks that a controller samples from.

``get_space("mlp")`` / ``get_space("cnn")`` return the built-in spaces; write your own by subclassing
:class:`SearchSpace` (``suggest`` + ``build`` + ``grid``).
"""

from __future__ import annotations

from autoarch.search_spaces._base import ACTIVATIONS, CONNECTIVITY, Architecture, SearchSpace
from autoarch.search_spaces.cnn import CNNSpace
from autoarch.search_spaces.mlp import MLPSpace

from autoarch.exceptions import SpaceError, did_you_mean

__all__ = ["ACTIVATIONS", "CONNECTIVITY", "Architecture", "SearchSpace", "MLPSpace", "CNNSpace", "get_space",
           "SPACES"]

SPACES: dict[str, type[SearchSpace]] = {"mlp": MLPSpace, "cnn": CNNSpace}


def get_space(name: str | SearchSpace, input_kind: str = "tabular") -> SearchSpace:
    """Return a search space instance: by name, ``"auto"`` (cnn for images, mlp otherwise) or as given."""
    if isinstance(name, SearchSpace):
        return name
    if name == "auto":
        name = "cnn" if input_kind == "image" else "mlp"
    if name not in SPACES:
        choices = ["auto", *SPACES]
        raise SpaceError(f"space must be one of {choices}, but got {name!r}.{did_you_mean(name, choices)}")
    space = SPACES[name]()
    if input_kind not in space.input_kinds:
        raise SpaceError(f"the {name} space does not take {input_kind} input; use --space mlp or --space auto.")
    return space
