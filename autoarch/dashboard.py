"""``autoarch dashboard RUN_DIR``: optuna-dashboard on a run's study (the optional extra ``autoarch[dashboard]``)."""

from __future__ import annotations

import os
from collections.abc import Callable

from autoarch.exceptions import ConfigError

__all__ = ["serve"]

INSTALL = "pip install 'autoarch[dashboard]'"


def serve(run_dir: str | os.PathLike[str], storage: str | None = None, host: str = "127.0.0.1", port: int = 8080,
          announce: Callable[[str], None] = print) -> None:
    """Serve optuna-dashboard on the study of ``run_dir`` (its ``study.db``, or ``storage``) at ``host:port``
    until interrupted. Bound to 127.0.0.1 unless ``host`` says otherwise: the dashboard can edit the study.

    Raises:
        ConfigError: optuna-dashboard is not installed, or the port cannot be used.
        DataError: ``run_dir`` holds no study and no ``storage`` was given (:func:`~autoarch.study.run_storage_url`).
    """
    try:
        import optuna_dashboard
    except ImportError:
        raise ConfigError(f"autoarch dashboard needs optuna-dashboard, an optional extra: {INSTALL}") from None
    from autoarch.study import open_storage, redact, run_storage_url

    storage = run_storage_url(run_dir, storage)
    backend = open_storage(storage, must_exist=True, retry=False)
    announce(f"optuna-dashboard on http://{host}:{port}/dashboard/ (study in {redact(storage)}); Ctrl-C stops it")
    try:
        optuna_dashboard.run_server(backend, host=host, port=port)
    except OSError as exc:
        raise ConfigError(f"cannot serve on {host}:{port} ({exc.strerror or exc}); give another --port.") from None
