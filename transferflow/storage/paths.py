"""The one path policy: every path transferflow writes, replaces or deletes is checked here.

Invariants (``tests/flows/test_trust_boundaries.py`` checks them on generated inputs):

- A name the user gives (run name, alias target, version) is validated as a *name*, never joined
  as a path: no separators, no ``..``, no leading dot.
- A path the product writes under a root (run folders under the output folder, versions under
  the registry, objects under the store) is resolved (symlinks, ``..``) and must lie under the
  resolved root.
- An output file the user names is resolved the way the kernel will open it, compared with every
  input by identity (never by spelling), and must be a regular file or not exist: a device, FIFO,
  socket or folder is refused, never replaced (``-`` streams to standard output instead).
- Nothing is deleted unless the product's own marker shows the product made it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import stat
from collections.abc import Iterable
from pathlib import Path

from transferflow.errors import ConfigError

# Letters, digits, '.', '_', '-', '+'; starts with a letter or digit; at most 100 characters.
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,99}")
# Suffixes the product gives its own folders beside a run folder.
_RESERVED_SUFFIXES = (".failed", ".partial")

STDOUT = "-"
"""The output path that means "write to standard output"."""


def check_name(value: str, what: str) -> str:
    """``value`` if it is a safe name for a file or folder the product creates.

    Args:
        value: the name the user gave.
        what: the setting or flag, for the message (e.g. ``run_name``).

    Returns:
        ``value`` unchanged.

    Raises:
        ConfigError: the name could address another folder (``/``, ``..``, a leading dot) or
            holds characters outside letters, digits, ``.``, ``_``, ``-`` and ``+``.
    """
    if (
        not isinstance(value, str)
        or not _NAME.fullmatch(value)
        or ".." in value
        or value.endswith(_RESERVED_SUFFIXES)
    ):
        raise ConfigError(
            f"{what} {value!r} is not a plain name: use 1-100 letters, digits, '.', '_', '-' or "
            "'+', starting with a letter or digit, without '..' and not ending in "
            f"{' or '.join(_RESERVED_SUFFIXES)} (it names a folder, never a path)."
        )
    return value


def resolved(path: str | os.PathLike[str]) -> Path:
    """``path`` made absolute with symlinks and ``..`` resolved as the kernel would open it
    (``nosuchdir/../x`` is ``./x``: ``..`` is applied after the missing folder, as ``mkdir -p``
    followed by an open would)."""
    return Path(os.path.realpath(os.path.abspath(os.fspath(path))))


def is_within(path: str | os.PathLike[str], root: str | os.PathLike[str]) -> bool:
    """Whether ``path`` resolves to ``root`` or a path beneath it."""
    return resolved(path).is_relative_to(resolved(root))


def child(root: str | os.PathLike[str], name: str, what: str) -> Path:
    """``root / name`` after checking ``name`` is a plain name and the result stays under
    ``root`` once symlinks are resolved.

    Raises:
        ConfigError: a bad name, or a symlink at ``root / name`` that points elsewhere.
    """
    check_name(name, what)
    return inside(root, name, what)


def inside(root: str | os.PathLike[str], name: str, what: str) -> Path:
    """``root / name`` for a name the product derived from a checked name (``.x.partial``):
    the result must stay under ``root`` once symlinks are resolved.

    Raises:
        ConfigError: a symlink at ``root / name`` that points elsewhere.
    """
    if "/" in name or name in ("", ".", ".."):
        raise ConfigError(f"{what}: {name!r} is not a folder name.")
    path = Path(root) / name
    if not is_within(path, root):
        raise ConfigError(
            f"{what} {name!r}: {path} leads outside {root} (a symbolic link); "
            "transferflow writes only inside its folders. Remove the link or choose another name."
        )
    return path


def output_file(path: str | os.PathLike[str], flag: str, stream: bool = True) -> Path | None:
    """Where to write a user-named output file, or ``None`` for standard output (``-``, where
    ``stream`` allows it).

    Raises:
        ConfigError: the path is a folder, device, FIFO or socket (never replaced; use ``-`` to
            stream), or a folder on the way is a file.
    """
    if os.fspath(path) == STDOUT:
        if not stream:
            raise ConfigError(f"{flag} {path}: give a file path (this output is not streamed).")
        return None
    # 'file/../x' is no path to the kernel: refuse it rather than resolve it to './x'.
    walked = Path(os.fspath(path))
    prefix = Path(walked.parts[0]) if walked.parts else Path(".")
    for part in walked.parts[1:-1]:
        prefix = prefix / part
        if prefix.exists() and not prefix.is_dir():
            raise ConfigError(f"{flag} {path}: {prefix} is a file, not a folder; choose a path.")
    final = resolved(path)
    try:
        mode = final.stat().st_mode
    except FileNotFoundError:
        mode = None
    except NotADirectoryError:  # an existing folder on the way is a file
        raise ConfigError(
            f"{flag} {path}: a folder on the way is a file; choose a path inside a folder."
        ) from None
    if mode is not None and stat.S_ISDIR(mode):
        raise ConfigError(f"{flag} {path} is a folder; give a file path such as predictions.csv.")
    if mode is not None and not stat.S_ISREG(mode):
        stdout = f", or '{STDOUT}' to write to standard output" if stream else ""
        raise ConfigError(
            f"{flag} {path} is not a regular file (a device, pipe or socket) and is never "
            f"replaced. Give a file path{stdout}."
        )
    return final


def same_file(a: str | os.PathLike[str], b: str | os.PathLike[str]) -> bool:
    """Whether two paths name the same file (by identity where both exist, else by resolved
    path): hard links, symlinks and ``..`` spellings all count."""
    ra, rb = resolved(a), resolved(b)
    if ra == rb:
        return True
    try:
        return os.path.samefile(ra, rb)
    except OSError:
        return False


def refuse_inputs(output: Path, inputs: Iterable[object], flag: str) -> None:
    """Raise when ``output`` is one of ``inputs`` (local paths; URLs and ``None`` are skipped).

    Raises:
        ConfigError: naming the input.
    """
    from transferflow.storage.files import is_url

    for item in inputs:
        if item is None or is_url(item):
            continue
        if same_file(output, os.fspath(item)):  # type: ignore[call-overload]
            raise ConfigError(
                f"{flag} {output} is an input file ({item}); inputs are never overwritten. "
                "Choose another output path."
            )


def not_a_file(path: str | os.PathLike[str]) -> str | None:
    """Why ``path`` cannot be read as an input file ("file not found", "is a folder", "is a
    FIFO"...), or None when it is a regular file (links followed)."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        if not os.path.isabs(path):  # a config file's relative paths are not read from its folder
            return (
                "file not found (a relative path is read from the folder the command runs in, "
                f"{os.getcwd()})"
            )
        return "file not found"
    except NotADirectoryError:
        return "file not found (a folder on the path is a file)"
    except OSError as exc:
        return f"cannot be opened ({exc.strerror})"
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "is a folder; expected a file"
    kind = "a FIFO" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode) else "a device"
    return f"is {kind}, not a regular file; save the data to a file and give its path"


# -- folders the product made ---------------------------------------------------------------------

OWNER = ".owner.json"
"""In a scratch or staging folder: which process on which machine writes it."""

MADE_BY = ".transferflow"
"""In a folder the product made and may later replace: its kind (e.g. a failed run's record)."""


def mark_made(folder: Path, kind: str) -> None:
    """Record that transferflow made ``folder`` (so a later run may replace it)."""
    (folder / MADE_BY).write_text(json.dumps({"kind": kind}) + "\n", encoding="utf-8")


def made_by_product(folder: Path, kind: str) -> bool:
    """Whether ``folder`` is a real folder (not a link) holding the product's marker of ``kind``."""
    try:
        if folder.is_symlink() or not folder.is_dir():
            return False
        return json.loads((folder / MADE_BY).read_text(encoding="utf-8")).get("kind") == kind
    except (OSError, ValueError, AttributeError):
        return False


def claim_scratch(folder: Path) -> None:
    """Mark a scratch folder as this process's, so a later run can remove it if this process is
    killed (:func:`remove_abandoned`)."""
    (folder / OWNER).write_text(
        json.dumps({"host": socket.gethostname(), "pid": os.getpid()}), encoding="utf-8"
    )


def remove_abandoned(parent: Path, pattern: str) -> list[tuple[Path, int]]:
    """Delete scratch folders under ``parent`` matching ``pattern`` whose owning process is gone.

    Only folders this product claimed (:func:`claim_scratch`) are touched, only when their process
    ran on this machine and no longer exists: a run in progress, another user's, or one on another
    machine sharing the folder is left alone.

    Returns:
        (folder, pid) of each folder removed.
    """
    if not parent.is_dir():
        return []
    host, removed = socket.gethostname(), []
    for folder in parent.glob(pattern):
        if folder.is_symlink() or not folder.is_dir():
            continue
        try:
            owner = json.loads((folder / OWNER).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if not isinstance(owner, dict) or owner.get("host") != host:
            continue
        pid = owner.get("pid")
        if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
            continue
        try:
            os.kill(pid, 0)
            continue  # still running
        except ProcessLookupError:
            pass
        except (PermissionError, OverflowError):
            continue  # alive and another user's, or not a pid at all
        shutil.rmtree(folder, ignore_errors=True)
        removed.append((folder, pid))
    return removed


def files_under(root: Path) -> Iterable[Path]:
    """Regular files under ``root``, never following a symbolic link (links are not yielded)."""
    if root.is_symlink() or not root.is_dir():
        return
    for base, _dirs, files in os.walk(root, followlinks=False):
        for name in files:
            path = Path(base) / name
            if not path.is_symlink() and path.is_file():
                yield path
