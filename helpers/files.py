"""Output files are written whole or not at all: a temp file beside the target, then a rename.

The rename happens where the file really lives: a symlink is written through (its target is
replaced, in the target's own folder, and the link stays a link). A target that is not a regular
file (a FIFO, /dev/stdout, a terminal) cannot be replaced and is written directly. Every failure to
write names the target file: a missing or read-only folder, a full disk.
"""
import contextlib
import errno
import json
import os
import stat
from pathlib import Path

from helpers.errors import BertTrtError


class OutputError(BertTrtError, OSError):
    """An output file that cannot be written; the message names the file and the fix."""

    def __str__(self):  # OSError would print its (errno, strerror) tuple form
        return self.args[0]


def _real_target(path):
    """The file that writing `path` changes: a symlink's target, followed to the end."""
    return Path(os.path.realpath(path))


def _is_special(path):
    """Whether `path` is written directly: it exists and is not a regular file or folder (FIFO,
    device, socket), or it names a stream of this process (/dev/stdout, /dev/fd/N, /proc/...),
    which may be a redirected regular file that must not be replaced behind the shell's back."""
    if os.path.abspath(path).startswith(("/dev/", "/proc/")):
        return True
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return not stat.S_ISREG(mode) and not stat.S_ISDIR(mode)


def check_writable(path, what="output file"):
    """Raise OutputError unless `path` can be written; for front ends, before any model work."""
    if _is_special(path):
        if not os.access(path, os.W_OK):
            raise OutputError(f"cannot write the {what} {path}: permission denied")
        return
    target = _real_target(path)
    if target.is_dir():
        raise OutputError(f"the {what} {path} is a folder; name a file in it")
    folder = target.parent
    if not folder.is_dir():
        raise OutputError(f"cannot write the {what} {path}: folder {folder} does not exist; "
                          f"create it first")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputError(f"cannot write the {what} {path}: folder {folder} is not writable; "
                          f"choose another place")
    if target.exists() and not os.access(target, os.W_OK):
        raise OutputError(f"cannot write the {what} {path}: the file is read-only; "
                          f"choose another name or make it writable")


def _failure(path, error):
    if error.errno == errno.ENOENT:
        return OutputError(f"cannot write {path}: folder {_real_target(path).parent} does not "
                           f"exist; create it first")
    reason = error.strerror or str(error)
    fix = {28: "free some space or write elsewhere",  # ENOSPC
           30: "the file system is read-only; write elsewhere",  # EROFS
           13: "choose another place",  # EACCES
           122: "the disk quota is full; free some space"}.get(error.errno, "check the path")
    return OutputError(f"cannot write {path}: {reason}; {fix}")


@contextlib.contextmanager
def atomic_output(path, mode=None):
    """A binary file to write `path` through, whole or not at all: a temp file beside the real
    target, fsync'ed and renamed over it when the block ends; on any failure (Ctrl-C included)
    the temp file goes and the target is untouched. Special targets are written directly.

    mode: the permission bits of the new file (default: those of the file it replaces, else 0644
    less the umask, as open() gives).
    """
    if _is_special(path):
        try:
            # Appending: a redirected stdout keeps what was written to it before.
            with open(path, "ab") as file:
                yield file
        except OSError as error:
            raise _failure(path, error) from None
        return
    target = _real_target(path)
    temp_path = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        with open(temp_path, "wb") as file:
            yield file
            file.flush()
            os.fsync(file.fileno())  # the data is on disk before the name points at it
        if mode is None and target.exists():
            mode = stat.S_IMODE(os.stat(target).st_mode)
        if mode is not None:
            os.chmod(temp_path, mode)
        os.replace(temp_path, target)
    except BaseException as error:
        temp_path.unlink(missing_ok=True)
        if isinstance(error, OSError) and not isinstance(error, OutputError):
            raise _failure(path, error) from None
        raise


def write_atomically(path, data, mode=None):
    """Write bytes or text to path, whole or not at all (see atomic_output)."""
    with atomic_output(path, mode) as file:
        file.write(data.encode("utf-8") if isinstance(data, str) else data)


def write_json_atomically(path, obj):
    """Write obj as indented JSON, whole or not at all."""
    write_atomically(path, json.dumps(obj, indent=2, ensure_ascii=False) + "\n")
