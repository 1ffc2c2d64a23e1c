"""``--config FILE`` and a run's recorded options: reading a TOML / JSON file (or a run's ``report.json``) into
:class:`~autoarch.config.SearchConfig` options, with the key and the allowed values named when one is wrong
(no torch)."""

from __future__ import annotations

from typing import Any

from autoarch.config import SearchConfig
from autoarch.exceptions import ConfigError, did_you_mean

__all__ = ["load_config_file", "recorded_options"]

_TYPES = {"int": (int,), "float": (int, float), "str": (str,), "bool": (bool,), "None": (type(None),),
          "CompressConfig": (dict,)}


def _expected_type(name: str) -> tuple[type, ...]:
    """The value types a config file may give for field ``name``: its annotation's (ints are accepted where floats
    are; a :class:`~autoarch.search_spaces.SearchSpace` object is given by its import path, a string)."""
    annotation = SearchConfig.__dataclass_fields__[name].type
    types = [t for part in str(annotation).split("|") for t in _TYPES.get(part.strip(), ())]
    return tuple(dict.fromkeys(types))


def load_config_file(path: str) -> dict[str, Any]:
    """The options of a config file for ``autoarch search --config FILE``: TOML (``.toml``) or JSON (``.json``),
    a flat table of :class:`SearchConfig` fields, or a run's ``report.json`` (its ``config`` block, so that a run
    can be repeated from it; the resolved values it records are mapped back, e.g. ``test = "official"``).

    Raises:
        ConfigError: the file cannot be read, a key is not an option, or a value has the wrong type. Values are
            range-checked later by :meth:`SearchConfig.validate`, which names the option.
    """
    import json
    from pathlib import Path

    file = Path(path)
    try:
        text = file.read_text()
    except OSError as exc:
        raise ConfigError(f"--config {path}: {exc.strerror or exc}; give a .toml or .json file.") from None
    try:
        if file.suffix.lower() == ".json":
            values = json.loads(text)
        else:
            try:
                import tomllib
            except ModuleNotFoundError:  # Python 3.10
                import tomli as tomllib  # type: ignore[no-redef]
            values = tomllib.loads(text)
    except ValueError as exc:  # json.JSONDecodeError and tomllib.TOMLDecodeError are ValueErrors
        raise ConfigError(f"--config {path} is not valid {'JSON' if file.suffix.lower() == '.json' else 'TOML'}: "
                          f"{' '.join(str(exc).split())}") from None
    if isinstance(values, dict) and isinstance(values.get("config"), dict) and "autoarch_version" in values:
        values = recorded_options(values["config"])
    if not isinstance(values, dict):
        raise ConfigError(f"--config {path} must hold a table of options (key = value), not {type(values).__name__}.")
    fields = SearchConfig.__dataclass_fields__
    for key, value in values.items():
        if key not in fields:
            raise ConfigError(f"--config {path}: unknown option {key!r}.{did_you_mean(key, fields)} The options are "
                              f"{', '.join(sorted(fields))}.")
        allowed = _expected_type(key)
        if not isinstance(value, allowed) or (isinstance(value, bool) and bool not in allowed):
            names = " or ".join("null" if t is type(None) else "a table" if t is dict else t.__name__
                                for t in allowed)
            raise ConfigError(f"--config {path}: {key} must be {names}, not {value!r}.")
        if key == "compress" and isinstance(value, dict):
            from autoarch.compress.config import CompressConfig

            try:
                CompressConfig.from_options(**value)
            except ConfigError as exc:
                raise ConfigError(f"--config {path}: [compress] {exc}") from None
    return dict(values)


def recorded_options(config: dict[str, Any]) -> dict[str, Any]:
    """A report's ``config`` block (or the options a study records for its workers) as options: what the run
    resolved (``--cv auto`` -> 0.1, ``test`` -> ``official``) is what it ran with; only the values that are not
    options themselves are mapped back."""
    values = {k: v for k, v in config.items() if k in SearchConfig.__dataclass_fields__}
    if values.get("test") in ("official", "split"):
        values["test"] = None if values["test"] == "official" else "split"
    if isinstance(values.get("storage"), str) and "***" in values["storage"]:
        raise ConfigError("the storage URL in that report is redacted (its password is never written); give "
                          "--storage URL.")
    if values.get("search_samples") is None:
        values["search_samples"] = "all"
    return values
