"""The owner of a run directory's files: every output written atomically with the umask's mode, and the outputs
of a run replaced as one *generation* that ``manifest.json`` names.

Why a generation: a kill -9 while a finished run directory was being rewritten (a rerun with another ``--prune``)
left a new ``model.onnx`` beside the old ``report.json`` and ``model.pt``; each file was whole, together they
lied (issue #15). A :class:`Generation` therefore writes the new files complete into a staging folder inside the
run directory, then replaces ``manifest.json`` (generation id, each file's name, size and sha256) in one rename,
and only then moves the files into place. Whenever a kill lands, the old set is untouched (before the manifest)
or the manifest already names the new files, so a reader that checks what it reads (:func:`read_outputs`,
:func:`check_file`) tells a mixed or partial set from a whole one and says so in one line. A directory without a
manifest (written by an older autoarch) is read as before. The optuna study (``study.db``) changes during a
search and is never part of a generation.

This module needs the standard library only (the predictor uses it without torch; :func:`save_state_dict`
imports torch when called).

Example:
    >>> with Generation("runs/x", writer="search") as gen:  # doctest: +SKIP
    ...     gen.write_json("report.json", report)
    ...     export_onnx(model, example, gen.path("model.onnx"))
    ...     gen.commit()
    >>> files = read_outputs("runs/x", ["report.json"])  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import shutil
import signal
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

from autoarch import __version__
from autoarch.exceptions import ConfigError, DataError

__all__ = ["MANIFEST", "KILL_ENV", "Generation", "atomic_path", "write_bytes", "write_text", "write_json",
           "save_state_dict", "copy_file", "read_manifest", "read_outputs", "check_file", "crash_point", "KEEP_DIR",
           "run_dir_lock", "prepare_out"]

MANIFEST = "manifest.json"
STAGING_PREFIX = ".staging-"
KILL_ENV = "AUTOARCH_TEST_KILL_AT"
"""Test hook: the name of a phase (:func:`crash_point`) at which the process SIGKILLs itself."""


def crash_point(phase: str) -> None:
    """Kill this process (SIGKILL, as ``kill -9`` would) at ``phase`` when ``$AUTOARCH_TEST_KILL_AT`` names it.

    The crash tests (``tests/test_crash.py``) use it to hit moments too short to reach by timing. Phases: ``trial``
    (a trial has finished), ``epoch`` (a trial has trained an epoch: the middle of a trial), ``retrain``,
    ``prune``, ``fine-tune``, ``export``, ``int8`` (a compression stage starts), ``write:NAME`` (an output's
    temporary file is complete, not yet renamed), ``manifest`` (the new manifest is in place, its files not yet)
    and ``commit`` (the first file of a generation has been moved).
    """
    if os.environ.get(KILL_ENV) == phase:
        os.kill(os.getpid(), getattr(signal, "SIGKILL", signal.SIGTERM))


def _fsync_dir(path: Path) -> None:
    """Make a rename in ``path`` durable (POSIX; directories cannot be opened for this on Windows)."""
    if not hasattr(os, "O_DIRECTORY"):
        return
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """A temporary file beside ``path`` for a writer that needs a file name (``onnx.save_model``,
    ``torch.save``, ``DataFrame.to_csv``); once the block ends it is flushed to disk and renamed over ``path``, so
    a reader sees the old file or the new one, never a part. On an error it is removed and ``path`` is unchanged.

    The file is created as ``open()`` creates files (0666 less the umask): ``tempfile.mkstemp``'s 0600 left the
    shipped model unreadable to a service account (issue #15, item 7).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        crash_point(f"write:{path.name}")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (:func:`atomic_path`)."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` (UTF-8, newlines as given) to ``path`` atomically."""
    return write_bytes(path, text.encode("utf-8"))


def write_json(path: str | os.PathLike[str], obj: Any, default: Callable[[Any], Any] | None = None) -> Path:
    """Write ``obj`` as indented JSON to ``path`` atomically."""
    return write_text(path, json.dumps(obj, indent=2, default=default))


def save_state_dict(model: Any, path: str | os.PathLike[str]) -> Path:
    """``torch.save`` the ``state_dict`` of ``model`` (a module, or a state dict itself) to ``path`` atomically."""
    import torch

    state = model.state_dict() if hasattr(model, "state_dict") else model
    with atomic_path(path) as tmp:
        torch.save(state, tmp)
    return Path(path)


def copy_file(source: str | os.PathLike[str], path: str | os.PathLike[str]) -> Path:
    """Copy the bytes of ``source`` to ``path`` atomically (not its mode: ``path`` gets the umask's)."""
    with atomic_path(path) as tmp:
        shutil.copyfile(source, tmp)
    return Path(path)


def _digest(data: bytes) -> dict[str, Any]:
    return {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # it exists but belongs to someone else
        return True
    return True


class Generation:
    """One set of outputs of ``run_dir``, staged and then put in place together by :meth:`commit`.

    Writers put files in the staging folder (:meth:`path` for those that need a file name, or the ``write_*``
    methods); nothing in ``run_dir`` changes before :meth:`commit`. Used as a context manager, a generation left
    uncommitted (an exception) is discarded, and the run directory keeps its previous outputs.

    Args:
        run_dir: the directory the outputs belong to (created if missing).
        writer: the command that writes them (``search``, ``compress``), named in the readers' "rerun" hint.
    """

    def __init__(self, run_dir: str | os.PathLike[str], writer: str) -> None:
        self.run_dir = Path(run_dir)
        self.writer = writer
        self.id = f"{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{secrets.token_hex(4)}"
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self._remove_stale_staging()
        self.staging = self.run_dir / f"{STAGING_PREFIX}{os.getpid()}-{self.id}"
        self.staging.mkdir()
        self.manifest: dict[str, Any] | None = None

    def _remove_stale_staging(self) -> None:
        """Staging folders of killed writers (their process is gone) hold nothing that a reader may use."""
        for folder in self.run_dir.glob(f"{STAGING_PREFIX}*"):
            pid = folder.name[len(STAGING_PREFIX):].split("-", 1)[0]
            if folder.is_dir() and (not pid.isdigit() or int(pid) == os.getpid() or not _pid_alive(int(pid))):
                shutil.rmtree(folder, ignore_errors=True)

    def __enter__(self) -> Generation:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
                 ) -> None:
        self.discard()

    def path(self, name: str) -> Path:
        """Where the output ``name`` is staged (it reaches ``run_dir / name`` at :meth:`commit`)."""
        return self.staging / name

    def write_text(self, name: str, text: str) -> Path:
        return write_text(self.path(name), text)

    def write_json(self, name: str, obj: Any, default: Callable[[Any], Any] | None = None) -> Path:
        return write_json(self.path(name), obj, default)

    def save_state_dict(self, name: str, model: Any) -> Path:
        return save_state_dict(model, self.path(name))

    def commit(self) -> dict[str, Any]:
        """Put the staged files in place as the run directory's outputs and return the new manifest.

        Order: the manifest naming the new files replaces the old one (one rename), then the files are moved in,
        then the old generation's files that this one does not rewrite are removed (those another command wrote,
        e.g. ``autoarch compress`` into a search's directory, are kept and stay in the manifest).
        """
        files = {p.name: {**_digest(p.read_bytes()), "writer": self.writer} for p in sorted(self.staging.iterdir())
                 if p.is_file() and not p.name.startswith(".")}
        try:
            old = read_manifest(self.run_dir)
        except DataError:
            old = None  # a damaged manifest is replaced; its generation is being rewritten anyway
        stale: list[str] = []
        for name, entry in (old["files"] if old else {}).items():
            if name in files:
                continue
            if entry.get("writer") == self.writer:
                stale.append(name)
            elif (self.run_dir / name).is_file():
                files[name] = entry
        manifest = {"format": 1, "generation": self.id, "writer": self.writer, "autoarch_version": __version__,
                    "written": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "files": files}
        write_json(self.run_dir / MANIFEST, manifest)
        crash_point("manifest")
        for i, name in enumerate(n for n in files if (self.staging / n).is_file()):
            os.replace(self.staging / name, self.run_dir / name)
            if i == 0:
                crash_point("commit")
        for name in stale:
            (self.run_dir / name).unlink(missing_ok=True)
        _fsync_dir(self.run_dir)
        self.discard()
        self.manifest = manifest
        return manifest

    def discard(self) -> None:
        """Remove the staging folder (after :meth:`commit`, or to give up a generation)."""
        shutil.rmtree(self.staging, ignore_errors=True)


def _rerun_hint(run_dir: Path, manifest: dict[str, Any] | None) -> str:
    writer = (manifest or {}).get("writer")
    if writer == "search":
        return f"rerun `autoarch search ... --out {run_dir}` (the same command) to finish it"
    if writer == "compress":
        return f"rerun `autoarch compress ...` that wrote {run_dir} to finish it"
    return f"rerun the command that wrote {run_dir} to finish it"


def read_manifest(run_dir: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The manifest of ``run_dir``, or None when it has none (written by an older autoarch, or not a run).

    Raises:
        DataError: ``manifest.json`` is not a manifest.
    """
    path = Path(run_dir) / MANIFEST
    try:
        manifest = json.loads(path.read_bytes())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise DataError(f"{path} cannot be read ({type(exc).__name__}: {str(exc)[:100]}); "
                        f"{_rerun_hint(Path(run_dir), None)}.") from None
    files = manifest.get("files") if isinstance(manifest, dict) else None
    if not isinstance(files, dict) or not all(isinstance(e, dict) and "sha256" in e for e in files.values()):
        raise DataError(f"{path} is not an autoarch manifest (no file list); {_rerun_hint(Path(run_dir), None)}.")
    return manifest


def _verify(path: Path, data: bytes | None, manifest: dict[str, Any]) -> None:
    """A file the manifest does not name is not a run output (a commit removes its writer's stale files): a user
    put it there, and it is read unchecked."""
    entry = manifest["files"].get(path.name)
    where = f"this run's outputs ({path.parent / MANIFEST})"
    hint = _rerun_hint(path.parent, manifest)
    if entry is None:
        return
    if data is None:
        raise DataError(f"{path} is missing from {where}: the run was interrupted while writing them; {hint}.")
    if _digest(data) != {"size": entry.get("size"), "sha256": entry["sha256"]}:
        raise DataError(f"{path} does not belong to {where}: the run was interrupted while writing them; {hint}.")


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        return None


def read_outputs(run_dir: str | os.PathLike[str], names: Iterable[str]) -> dict[str, bytes]:
    """The bytes of the outputs ``names`` of ``run_dir`` that exist, checked against its manifest (read once, so
    that all come from one generation). Parse what is returned rather than reading the files again.

    A missing file the manifest does not name is left out of the result (the caller says what is missing); one it
    does not name, or any file without a manifest, is returned unchecked.

    Raises:
        DataError: a file differs from the manifest, or the manifest names a missing file.
    """
    run = Path(run_dir)
    manifest = read_manifest(run)
    files = {name: _read(run / name) for name in names}
    if manifest is not None:
        for name, data in files.items():
            _verify(run / name, data, manifest)
    return {name: data for name, data in files.items() if data is not None}


def check_file(path: str | os.PathLike[str]) -> bytes | None:
    """The bytes of ``path`` when its directory's manifest names it (checked), else None: no manifest, or a file
    the manifest does not name (a model a user put there), which the caller reads itself.

    Raises:
        DataError: the file differs from the manifest or is missing while the manifest names it.
    """
    path = Path(path)
    manifest = read_manifest(path.parent)
    if manifest is None or path.name not in manifest["files"]:
        return None
    data = _read(path)
    _verify(path, data, manifest)
    return data


KEEP_DIR = ".trial-models"
"""Run-directory folder of the best trials' holdout models while a search runs (removed when it finishes)."""


@contextlib.contextmanager
def run_dir_lock(out_dir: Path | None) -> Iterator[None]:
    """Hold an exclusive ``flock`` on the run directory itself (no file is created) while a search writes it: a
    second search on the same ``--out`` is refused instead of racing the first to create the study (SQLite:
    "UNIQUE constraint failed"). Workers (``autoarch worker``, the search's own processes) do not take it."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock
        fcntl = None  # type: ignore[assignment]
    if out_dir is None or fcntl is None:
        yield
        return
    fd = os.open(out_dir, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ConfigError(f"{out_dir} is in use by another autoarch search; wait for it to finish, or give "
                              "another --out (join a running search with 'autoarch worker').") from None
        yield
    finally:
        os.close(fd)


def prepare_out(out: str | os.PathLike[str] | None) -> Path | None:
    if out is None:
        return None
    path = Path(out)
    if path.exists() and not path.is_dir():
        raise ConfigError(f"--out {str(path)!r} is a file, not a directory; give a directory path.")
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise ConfigError(f"cannot write to --out {str(path)!r} ({exc.strerror}); choose a writable directory.") \
            from None
    return path
