"""Search spaces: families of networks that a controller samples from.

``get_space("mlp")`` / ``get_space("cnn")`` (``rnn``, ``conv1d``) return the built-in spaces; write your own by
subclassing :class:`SearchSpace` (``suggest`` + ``build`` + ``grid``) and give it by import path,
``"mypkg.spaces:MySpace"``
(``--space mypkg.spaces:MySpace``), or as an instance to :func:`autoarch.search`. A run records its space as
:func:`space_ref` says, so that ``autoarch.load`` and ``autoarch compress`` rebuild a user's space too.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any

from autoarch.config import AUTO_SPACE, LONG_SEQUENCE
from autoarch.config import SPACES as BUILTIN_SPACES
from autoarch.exceptions import SpaceError, did_you_mean
from autoarch.imports import import_class
from autoarch.search_spaces._base import ACTIVATIONS, CONNECTIVITY, Architecture, SearchSpace
from autoarch.search_spaces.cnn import CNNSpace
from autoarch.search_spaces.conv1d import Conv1DSpace
from autoarch.search_spaces.mlp import MLPSpace
from autoarch.search_spaces.rnn import RNNSpace

__all__ = ["ACTIVATIONS", "CONNECTIVITY", "Architecture", "SearchSpace", "MLPSpace", "CNNSpace", "RNNSpace",
           "Conv1DSpace",
           "get_space", "SPACES", "space_ref"]



def get_space(name: str | SearchSpace, input_kind: str = "tabular", *, augment: bool | None = None,
              input_shape: Sequence[int] | None = None) -> SearchSpace:
    """Return a search space instance: by name, ``"auto"`` (cnn for images, rnn for text and sequences of up to
    :data:`~autoarch.config.LONG_SEQUENCE` steps, conv1d for longer sequences when ``input_shape`` is given, mlp
    otherwise) or as given.

    ``augment`` (for a space built by name) switches the search over training augmentation on or off where the
    space has one (the cnn space); None keeps the space's default. A given instance is returned as it is.
    """
    if isinstance(name, SearchSpace):
        return name
    if name == "auto":
        name = AUTO_SPACE.get(input_kind, "mlp")
        if input_kind == "sequence" and input_shape is not None and int(input_shape[0]) > LONG_SEQUENCE:
            name = "conv1d"
    if ":" in name:
        cls = _import_space(name)
        if _is_nni_space(cls):  # NNI's ModelSpace, through the optional integration (which imports NNI)
            from autoarch.integrations.nni import NNISpace

            space: SearchSpace = NNISpace(cls, ref=name)
            return _check_kind(space, name, input_kind)
    elif name not in SPACES:
        choices = ["auto", *SPACES]
        raise SpaceError(f"space must be one of {choices} or an import path 'module:Class', but got {name!r}."
                         f"{did_you_mean(name, choices)}")
    else:
        cls = SPACES[name]
    try:
        parameters = inspect.signature(cls).parameters
        kwargs: dict[str, Any] = {"augment": augment} if augment is not None and "augment" in parameters else {}
        if "input_kind" in parameters:  # a space that shapes itself to the input (rnn: text or sequences)
            kwargs["input_kind"] = input_kind
        space = cls(**kwargs)
    except TypeError as exc:
        raise SpaceError(f"space {name!r} cannot be built without arguments ({exc}); give defaults to its "
                         "__init__ parameters, or pass an instance to autoarch.search.") from None
    return _check_kind(space, name, input_kind)


def _check_kind(space: SearchSpace, name: str, input_kind: str) -> SearchSpace:
    if input_kind not in space.input_kinds:
        raise SpaceError(f"the {name} space does not take {input_kind} input (it takes "
                         f"{', '.join(space.input_kinds) or 'nothing'}); use --space auto (cnn for images, rnn for "
                         "text and sequences, mlp for tables).")
    return space


def space_ref(space: SearchSpace) -> str:
    """How a run records ``space``: a built-in's name, else the import path ``module:Class`` of its class, which
    :func:`get_space` imports again (a class defined in a script's ``__main__`` reloads only in that script)."""
    import_path = getattr(space, "import_path", None)  # a wrapped class (an NNI model space) names its own
    if import_path:
        return str(import_path)
    cls = type(space)
    for name, builtin in SPACES.items():
        if cls is builtin:
            return name
    return f"{cls.__module__}:{cls.__qualname__}"


def _import_space(path: str) -> type:
    """The class at ``path``: a :class:`SearchSpace` subclass or an NNI ``ModelSpace`` subclass."""
    return import_class(path, SearchSpace, "space", SpaceError,
                        "subclass autoarch.search_spaces.SearchSpace (suggest, build, grid), or give an NNI "
                        "ModelSpace subclass", accept=_is_nni_space)


def _is_nni_space(cls: type) -> bool:
    """An NNI ``ModelSpace`` subclass, told without importing NNI (a class that has one imported it already)."""
    return any(base.__name__ == "ModelSpace" and base.__module__.startswith("nni.") for base in cls.__mro__)


SPACES: dict[str, type[SearchSpace]] = {name: _import_space(path) for name, path in BUILTIN_SPACES.items()}
"""The built-in spaces' classes, by name: the registry :data:`autoarch.config.SPACES` (import paths) resolved."""
