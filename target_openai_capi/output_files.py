"""Opening the files the target writes (dead letters, the request log): owner-only, append."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

# Files the target reads and must never write: (device, inode) -> what the file is.
_PROTECTED: dict[tuple[int, int], str] = {}


def protect(path: Path, what: str) -> None:
    """Refuse, from now on, to open `path` (if it exists) as an output: `what` says why."""
    try:
        found = os.stat(path)
    except (OSError, ValueError):
        return  # (not there: reading it fails on its own, with its own message)
    if stat.S_ISREG(found.st_mode):
        _PROTECTED[(found.st_dev, found.st_ino)] = what


def protect_input(found: os.stat_result | None) -> None:
    """Refuse, from now on, to open the run's input (a regular file: --input, or stdin
    redirected from one) as an output. (The dead-letter file, opened before, writes a replay's
    rejections to a sibling file instead: pipeline/run.py.)"""
    if found is not None and stat.S_ISREG(found.st_mode):
        _PROTECTED[(found.st_dev, found.st_ino)] = "the file the run reads its input from"


def open_owner_only(path: Path) -> int:
    """A descriptor appending to `path`, its folders made as needed.

    A new file is created owner-only (0600), and an existing regular file readable by others is
    narrowed to 0600: the lines hold records as they arrived. A device, pipe or socket
    (`/dev/null`, a FIFO another process reads) is written to as it is: its mode is the
    system's, not the run's, and narrowing `/dev/null` would break it for every other user of
    the machine. The target's own standard output (its STATE messages) and error (its log) are
    refused, and so are the files given to `protect` (the config files), and, in a folder every
    user may write in, a file or pipe another user put there (its owner reads it whatever its
    mode) or their symbolic link. Raises OSError.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):  # (mkdir says "File exists": not what is wrong)
        blocking = next((p for p in path.parents if p.exists() and not p.is_dir()), path.parent)
        raise OSError(errno.ENOTDIR, f"{str(blocking)!r} is a file, not a folder") from None
    _refuse_another_user_s_link(path)
    planted = _maybe_planted(path)  # (before the open: a file it creates is this run's own)
    try:
        fifo = stat.S_ISFIFO(os.stat(path).st_mode)
    except OSError:
        fifo = False
    if fifo:  # (opened for writing, a pipe no program reads would hold the run for good)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_NONBLOCK)
        except OSError as exc:
            if exc.errno != errno.ENXIO:
                raise
            raise OSError(
                errno.ENXIO, "it is a named pipe (FIFO) that no program reads: start its reader"
            ) from None
        os.set_blocking(fd, True)
    else:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        found = os.fstat(fd)
        for stream, what in ((1, "STATE messages"), (2, "log")):
            # (a device is not read by a program: /dev/null, or a terminal, stays allowed)
            if not stat.S_ISCHR(found.st_mode) and _same_file(found, stream):
                raise OSError(
                    errno.EINVAL,
                    f"it is the target's standard {'output' if stream == 1 else 'error'}, which "
                    f"carries its {what}: records there would break the STATE stream or put "
                    "personal data in the log",
                )
        if (protected := _PROTECTED.get((found.st_dev, found.st_ino))) is not None:
            raise OSError(errno.EINVAL, f"it is {protected}: lines appended there would break it")
        if planted and not stat.S_ISCHR(found.st_mode) and _of_another_user(found.st_uid):
            # (its owner reads every line, whatever its mode: one planted in a shared folder
            # before the run would collect the records; a device, /dev/null, is the system's)
            raise OSError(
                errno.EPERM,
                f"it belongs to another user (uid {found.st_uid}), who could read the records "
                "written there: remove it, or name a path of your own",
            )
        if stat.S_ISREG(found.st_mode) and stat.S_IMODE(found.st_mode) & 0o077:
            try:
                os.fchmod(fd, 0o600)
            except OSError as exc:  # (a file system of no modes: FAT, some network shares)
                raise OSError(
                    exc.errno,
                    f"others may read it (mode {stat.S_IMODE(found.st_mode):o}) and it cannot "
                    f"be made owner-only: {exc.strerror or exc}",
                ) from None
        if stat.S_ISREG(found.st_mode) and found.st_size and not _ends_a_line(path):
            # A line an earlier run could not finish (killed mid-write): ended here, so that
            # this run's first line is a line of its own, not the end of that one.
            append_line(fd, b"\n")
    except OSError:
        os.close(fd)
        raise
    return fd


def _under_a_shared_folder(path: Path, *, follow: bool = True) -> bool:
    """Whether a folder above `path` is one every user may write in (/tmp, a folder made with
    umask 0): what lies below it, folders too, may be another user's making. Looked at as
    named and resolved (a link to a folder under /tmp leads there): the path itself followed
    too, or (`follow` false, for a link) only the folders it is in."""
    resolved = (
        os.path.realpath(path) if follow else os.path.join(os.path.realpath(path.parent), path.name)
    )
    for named in {os.path.abspath(path), resolved}:
        for folder in Path(named).parents:
            try:
                if os.stat(folder).st_mode & stat.S_IWOTH:
                    return True
            except OSError:
                continue
    return False


def _of_another_user(uid: int) -> bool:
    """An owner other than this user and root (root's files and links are the system's)."""
    return uid not in (os.geteuid(), 0)


def _maybe_planted(path: Path) -> bool:
    """Whether a file at `path` may have been put there by another user: it exists already,
    under a folder every user may write in. (A file on a volume of the host's user, as a
    container's root finds it, or one this run creates on a share that shows another owner,
    is no one's plant.)"""
    return os.path.lexists(path) and _under_a_shared_folder(path)


def _refuse_another_user_s_link(path: Path) -> None:
    """Raise OSError when `path` is a symbolic link of another user under a folder every user
    may write in (one pointing at a file of this user's would have the records appended
    there): Linux's fs.protected_symlinks rule, where it is off, over every folder above it.
    (/dev/stderr, root's link, or an image's link on a volume, is followed.)"""
    try:
        found = os.lstat(path)
    except OSError:
        return
    if (
        stat.S_ISLNK(found.st_mode)
        and _of_another_user(found.st_uid)
        and _under_a_shared_folder(path, follow=False)
    ):
        raise OSError(
            errno.EPERM,
            f"it is a symbolic link of another user (uid {found.st_uid}): name the file it "
            "points to, if that is meant",
        )


def _ends_a_line(path: Path) -> bool:
    """True when the file's last byte is a newline (or it cannot be read to say)."""
    try:
        with open(path, "rb") as file:
            file.seek(-1, os.SEEK_END)
            return file.read(1) == b"\n"
    except OSError:
        return True


def append_line(fd: int, line: bytes) -> None:
    """Append one whole line, or none of it: a write cut short (a full disk) is taken back, so
    that no part of a line is left for the next line to be appended to. Raises OSError."""
    written = 0
    try:
        before = os.fstat(fd).st_size
        while written < len(line):
            written += os.write(fd, line[written:])
    except OSError:
        if written:
            try:
                found = os.fstat(fd)
                # (only what this write added: not a line another process appended meanwhile)
                if stat.S_ISREG(found.st_mode) and found.st_size == before + written:
                    os.ftruncate(fd, before)
            except OSError:
                pass
        raise


def _same_file(found: os.stat_result, fd: int) -> bool:
    """True when `found` is the file open as descriptor `fd` (/dev/stdout names fd 1)."""
    try:
        other = os.fstat(fd)
    except OSError:
        return False
    return (found.st_dev, found.st_ino) == (other.st_dev, other.st_ino)
