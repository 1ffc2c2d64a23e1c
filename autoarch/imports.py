"""A user's class given by import path (``module:Class``): a search space (``--space``) or a controller
(``--controller``), imported and checked in one place, with one line naming what is wrong (no torch)."""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Callable

from autoarch.exceptions import AutoArchError

__all__ = ["import_class"]


def import_class(path: str, base: type, what: str, error: type[AutoArchError], fix: str,
                 accept: Callable[[type], bool] | None = None) -> type:
    """The class at ``path`` (``module:Class``, ``Class`` may be dotted), which must subclass ``base`` (or pass
    ``accept``, where given: another kind of class the caller adapts).

    Raises:
        error: the module does not import, has no such name, or it is not a subclass of ``base`` (``fix`` says
            what it must be); ``what`` names the option in the message (``space``, ``controller``).
    """
    module_name, _, attr = path.partition(":")
    try:
        with warnings.catch_warnings():  # NNI 3.0 warns at import about torch classes newer than itself: harmless
            warnings.filterwarnings("ignore", message=".*is found to be not a nn.Module", category=RuntimeWarning)
            module = importlib.import_module(module_name)
    except ImportError as exc:
        if (getattr(exc, "name", None) or "").partition(".")[0] == "nni":
            raise error(f"{what} {path!r}: module {module_name!r} needs NNI, which is not installed ({exc}); "
                        "install it with pip install -c constraints-nni.txt \"autoarch[nni]\".") from None
        raise error(f"{what} {path!r}: cannot import module {module_name!r} ({exc}); check the path and that the "
                    "module is installed or on PYTHONPATH.") from None
    obj: object = module
    for part in attr.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            raise error(f"{what} {path!r}: module {module_name!r} has no {attr!r}; check the class name.")
    if not (isinstance(obj, type) and (issubclass(obj, base) or (accept is not None and accept(obj)))):
        raise error(f"{what} {path!r}: {attr} is not a {base.__name__} subclass; {fix}.")
    return obj
