"""Machine-local lease files: an ``flock`` on one file per worker database, for a family whose
server dagz does not know."""

import contextlib
import fcntl
import hashlib
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from dagz import envvars
from dagz.errors import DagzError

#: Where machine-local lease files go when dagz does not know a family's server.
DEFAULT_LEASE_DIR = "/tmp/dagz-leases"


# --------------------------------------------------------------------------------------------
# machine-local lease files


def lease_dir() -> Path:
    """The shared directory of lease files, made sticky and world-writable (0o1777) when this
    process creates it; refused when it is not a directory, or is another user's and not
    sticky (another user could then take or remove our leases)."""
    path = Path(os.environ.get(envvars.LEASE_DIR) or DEFAULT_LEASE_DIR)
    try:
        os.mkdir(path, 0o1777)
        os.chmod(path, 0o1777)  # the umask applied to mkdir
    except FileExistsError:
        pass
    except OSError as exc:
        raise DagzError(f"dagz: cannot make the lease directory {path}: {exc}") from exc
    st = os.lstat(path)
    if not stat.S_ISDIR(st.st_mode):
        raise DagzError(f"dagz: the lease directory {path} is not a directory: remove it")
    if st.st_uid != os.getuid() and not st.st_mode & stat.S_ISVTX:
        raise DagzError(
            f"dagz: the lease directory {path} belongs to another user and is not sticky: "
            f"make it mode 1777 or set {envvars.LEASE_DIR} to a directory of yours"
        )
    return path


def _file_path(engine: str, name: str) -> Path:
    digest = hashlib.sha256(f"dagz worker {engine} {name}".encode()).hexdigest()[:32]
    return lease_dir() / f"{engine}-{digest}.lock"


def _flock_path(path: Path) -> int | None:
    """An fd holding an exclusive flock on `path` (created when missing), or None when another
    process holds it. A holder removes the file when it ends its lease: an fd whose file was
    removed between open and flock is not a lease, and is tried again."""
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC
    while True:
        try:
            fd = os.open(path, flags)
        except FileNotFoundError:
            try:
                fd = os.open(path, flags | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        try:
            now = os.stat(path, follow_symlinks=False)
            mine = os.fstat(fd)
            same = (now.st_dev, now.st_ino) == (mine.st_dev, mine.st_ino)
        except FileNotFoundError:
            same = False
        if same:
            return fd
        os.close(fd)


def _sweep(directory: Path) -> None:
    """Removes the lease files of this user that no process holds (their holder was killed):
    locked, then removed while locked, so that a process that opened one meanwhile sees that
    it was removed (`_flock_path`) and tries again."""
    with contextlib.suppress(OSError):
        for entry in os.scandir(directory):
            if not entry.name.endswith(".lock"):
                continue
            with contextlib.suppress(OSError):
                if entry.stat(follow_symlinks=False).st_uid != os.getuid():
                    continue
                fd = os.open(entry.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    os.unlink(entry.path)
                except BlockingIOError:
                    pass
                finally:
                    os.close(fd)


def _file_free(engine: str, name: str) -> bool:
    """Whether no process holds the lease file of `name` (without creating it)."""
    path = Path(os.environ.get(envvars.LEASE_DIR) or DEFAULT_LEASE_DIR)
    digest = hashlib.sha256(f"dagz worker {engine} {name}".encode()).hexdigest()[:32]
    try:
        fd = os.open(path / f"{engine}-{digest}.lock", os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)
    return True


@dataclass
class _Files:
    """This process's lease files: (engine, name) → (path, fd)."""

    held: dict[tuple[str, str], tuple[Path, int]] = field(default_factory=dict)
    swept: bool = False

    def try_take(self, engine: str, name: str) -> bool:
        if (engine, name) in self.held:
            return True
        path = _file_path(engine, name)
        if not self.swept:
            self.swept = True
            _sweep(path.parent)
        fd = _flock_path(path)
        if fd is None:
            return False
        self.held[(engine, name)] = (path, fd)
        return True

    def give_back(self, engine: str, name: str) -> None:
        entry = self.held.pop((engine, name), None)
        if entry is not None:
            path, fd = entry
            with contextlib.suppress(OSError):
                os.unlink(path)  # while still locked: see _flock_path
            os.close(fd)

    def close(self) -> None:
        for key in list(self.held):
            self.give_back(*key)
