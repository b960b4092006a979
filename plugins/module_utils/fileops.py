# -*- coding: utf-8 -*-
# Copyright: agentfleet.vps developers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""File operations for root working in trees an agent can write to.

An agent runs as its own user and can put a symlink (or a hard link)
wherever it can write. Root must never follow one: every operation here
walks the path from / one component at a time with O_NOFOLLOW, works on
directory descriptors (dir_fd), sets mode and owner on the open descriptor
and refuses anything that is not a plain directory or a regular file with
one link. A write replaces the file by rename, so a failed write (a full
disk among others) leaves the live file as it was; an append that fails
leaves no half line behind.

Callers that share a file hold its lock() around read-check-append."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import re
import secrets
import shutil
import sqlite3
import stat
import tempfile
import time

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class LockTimeout(OSError):
    """lock() gave up: another process held the lock past the timeout."""


class UnsafePath(OSError):
    """A path component is a symlink, not a directory, or a file is not a
    regular file with one link: root does not follow or touch it."""


def _parts(path):
    if not os.path.isabs(path):
        raise ValueError("fileops needs an absolute path, not %r" % path)
    parts = [part for part in path.split("/") if part]
    if any(part in (".", "..") for part in parts):
        raise UnsafePath(errno.EINVAL, "'.' or '..' in path", path)
    return parts


def _step(dir_fd, part, path):
    """Descriptor of the directory part inside dir_fd, not followed if it
    is a link."""
    try:
        return os.open(part, _DIR_FLAGS, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            raise UnsafePath(exc.errno, "not a plain directory (a symlink?): %s" % part, path) from None
        raise


def open_dir(path):
    """Descriptor of the directory at path, reached without following any
    symlink; the caller closes it."""
    fd = os.open("/", _DIR_FLAGS)
    try:
        for part in _parts(path):
            next_fd = _step(fd, part, path)
            os.close(fd)
            fd = next_fd
    except BaseException:
        os.close(fd)
        raise
    return fd


@contextlib.contextmanager
def _parent(path):
    directory, name = os.path.split(path)
    if not name:
        raise ValueError("fileops needs a file path, not a directory: %r" % path)
    dir_fd = open_dir(directory)
    try:
        yield dir_fd, name
    finally:
        os.close(dir_fd)


def _open_file(dir_fd, name, flags, mode, path):
    # O_NONBLOCK: a FIFO an agent puts where a file goes must not hang root
    # in open() (it is refused below, as any file that is not regular).
    try:
        fd = os.open(name, flags | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK | os.O_NOCTTY, mode, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise UnsafePath(exc.errno, "is a symlink", path) from None
        if exc.errno == errno.ENXIO:  # a FIFO opened for writing with no reader
            raise UnsafePath(exc.errno, "not a regular file with one link", path) from None
        raise
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode) or info.st_nlink != 1:
        os.close(fd)
        raise UnsafePath(errno.EPERM, "not a regular file with one link", path)
    return fd, info


def _write_all(fd, data):
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def read_bytes(path, limit=None, tail=False):
    """Content of the regular file at path, or None when it does not exist.
    With limit, at most that many bytes: the first ones, or with tail the
    last ones (an agent's file can be as large as its disk)."""
    try:
        with _parent(path) as (dir_fd, name):
            fd, info = _open_file(dir_fd, name, os.O_RDONLY, 0, path)
    except FileNotFoundError:
        return None
    with os.fdopen(fd, "rb") as handle:
        if limit is None:
            return handle.read()
        if tail and info.st_size > limit:
            handle.seek(info.st_size - limit)
        return handle.read(limit)


def open_read(path):
    """The regular file at path, reached without following a link, as a
    binary file object to read (and close)."""
    with _parent(path) as (dir_fd, name):
        fd, _info = _open_file(dir_fd, name, os.O_RDONLY, 0, path)
    return os.fdopen(fd, "rb")


def read_range(path, start, limit):
    """(bytes from offset start, at most limit of them; the file's stat),
    or (b"", None) when the file does not exist."""
    try:
        with _parent(path) as (dir_fd, name):
            fd, info = _open_file(dir_fd, name, os.O_RDONLY, 0, path)
    except FileNotFoundError:
        return b"", None
    with os.fdopen(fd, "rb") as handle:
        handle.seek(start)
        return handle.read(limit), info


def lstat(path):
    """stat of path itself (a symlink is not followed), or None when missing."""
    try:
        with _parent(path) as (dir_fd, name):
            return os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None


def owner(path):
    """(uid, gid) of path, or of its directory while path does not exist."""
    info = lstat(path)
    if info is None:
        dir_fd = open_dir(os.path.dirname(path))
        try:
            info = os.fstat(dir_fd)
        finally:
            os.close(dir_fd)
    return info.st_uid, info.st_gid


def listdir(path):
    """Names in the directory at path; [] when it does not exist."""
    try:
        fd = open_dir(path)
    except FileNotFoundError:
        return []
    try:
        return os.listdir(fd)
    finally:
        os.close(fd)


def makedirs(path, mode=0o755, uid=-1, gid=-1):
    """Create the missing directories of path, each with mode and owner set
    on its descriptor; existing ones are left as they are (a symlink among
    them is refused). The paths created, outermost first."""
    created, fd = [], os.open("/", _DIR_FLAGS)
    try:
        walked = ""
        for part in _parts(path):
            walked += "/" + part
            try:
                os.mkdir(part, 0o700, dir_fd=fd)
                made = True
            except FileExistsError:
                made = False
            next_fd = _step(fd, part, path)
            os.close(fd)
            fd = next_fd
            if made:
                if uid != -1 or gid != -1:
                    os.fchown(fd, uid, gid)
                os.fchmod(fd, mode)
                created.append(walked)
    finally:
        os.close(fd)
    return created


def set_meta(path, mode, uid=-1, gid=-1):
    """Mode and owner of the directory or regular file at path, set on its
    descriptor; True when either changed."""
    with _parent(path) as (dir_fd, name):
        try:
            fd = os.open(name, _DIR_FLAGS, dir_fd=dir_fd)
        except NotADirectoryError:
            fd, _info = _open_file(dir_fd, name, os.O_RDONLY, 0, path)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise UnsafePath(exc.errno, "is a symlink", path) from None
            raise
        try:
            info = os.fstat(fd)
            changed = False
            if (uid != -1 and info.st_uid != uid) or (gid != -1 and info.st_gid != gid):
                os.fchown(fd, uid, gid)
                changed = True
            if stat.S_IMODE(info.st_mode) != mode:
                os.fchmod(fd, mode)
                changed = True
            return changed
        finally:
            os.close(fd)


def remove(path):
    """Remove the file, symlink or whole directory tree at path without
    following any symlink in or under it; False when there was nothing."""
    try:
        with _parent(path) as (dir_fd, name):
            info = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
            if stat.S_ISDIR(info.st_mode):
                shutil.rmtree(name, dir_fd=dir_fd)
            else:
                os.unlink(name, dir_fd=dir_fd)
            return True
    except FileNotFoundError:
        return False


def files_under(top):
    """(path, stat) of every regular file under the directory top, no
    symlink followed; nothing when top does not exist."""
    try:
        with _parent(top) as (dir_fd, name):
            for base, _dirs, names, base_fd in os.fwalk(name, dir_fd=dir_fd, follow_symlinks=False):
                for entry in names:
                    info = os.stat(entry, dir_fd=base_fd, follow_symlinks=False)
                    if stat.S_ISREG(info.st_mode):
                        yield os.path.join(os.path.dirname(top), base, entry), info
    except FileNotFoundError:
        return


def _temp_name(name):
    return ".%s.%s.tmp" % (name, secrets.token_hex(6))


def clean_temps(path):
    """Remove the temp files a writer killed mid-write_atomic left beside
    path; call it where writers of path are excluded (under its lock)."""
    directory, name = os.path.split(path)
    pattern = re.compile(r"\.%s\.[0-9a-f]{12}\.tmp" % re.escape(name))
    dir_fd = open_dir(directory)
    try:
        for entry in os.listdir(dir_fd):
            if pattern.fullmatch(entry):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(entry, dir_fd=dir_fd)
    finally:
        os.close(dir_fd)


def write_atomic(path, data, mode=0o644, uid=-1, gid=-1):
    """Replace the file at path with data: a new file in the same directory,
    mode and owner set on its descriptor, fsynced, renamed over the name."""
    with _parent(path) as (dir_fd, name):
        tmp = _temp_name(name)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600,
                     dir_fd=dir_fd)
        try:
            try:
                os.fchmod(fd, mode)
                if uid != -1 or gid != -1:
                    os.fchown(fd, uid, gid)
                _write_all(fd, data)
                os.fsync(fd)
            finally:
                os.close(fd)
            os.rename(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp, dir_fd=dir_fd)
            raise
        os.fsync(dir_fd)


def write_if_changed(path, data, mode=0o644, uid=-1, gid=-1, check_mode=False):
    """write_atomic unless path already is a regular file holding data (a
    symlink or hard link there is replaced, never followed); True when it
    changed or, in check mode, would."""
    try:
        current = read_bytes(path)
    except UnsafePath:
        current = None
    if current == data:
        info = lstat(path)
        if stat.S_IMODE(info.st_mode) == mode and uid in (-1, info.st_uid) and gid in (-1, info.st_gid):
            return False
    if not check_mode:
        write_atomic(path, data, mode, uid, gid)
    return True


def append_line(path, text, mode=0o600, uid=-1, gid=-1, header=""):
    """Append text, one or more whole lines, to the file at path (created
    with mode and owner when missing, header first). A write that fails
    part way is cut back, so readers never see half a line. True when the
    file was created."""
    data = text.encode("utf-8")
    if not data.endswith(b"\n"):
        raise ValueError("append_line takes whole lines ending in a newline")
    with _parent(path) as (dir_fd, name):
        created = True
        try:
            fd, info = _open_file(dir_fd, name, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL, mode, path)
        except FileExistsError:
            created = False
            fd, info = _open_file(dir_fd, name, os.O_WRONLY | os.O_APPEND, 0, path)
        try:
            if created and (uid != -1 or gid != -1):
                os.fchown(fd, uid, gid)
            if created and header:
                data = header.encode("utf-8") + data
            try:
                _write_all(fd, data)
                os.fsync(fd)
            except OSError:
                os.ftruncate(fd, info.st_size)
                raise
        finally:
            os.close(fd)
    return created


@contextlib.contextmanager
def lock(path, mode=0o600, timeout=None):
    """Hold an exclusive flock on the regular file at path (created when
    missing) for the block, yielding its descriptor. A symlink or hard link
    put there is refused, so nobody can redirect the lock onto another
    file. timeout None waits as long as it takes; a number of seconds
    (0: one try) raises LockTimeout when the lock stays held."""
    with _parent(path) as (dir_fd, name):
        fd, _info = _open_file(dir_fd, name, os.O_RDWR | os.O_CREAT, mode, path)
    try:
        if timeout is None:
            fcntl.flock(fd, fcntl.LOCK_EX)
        else:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise LockTimeout(errno.EAGAIN, "lock held by another process", path) from None
                    time.sleep(0.1)
        yield fd
    finally:
        os.close(fd)


@contextlib.contextmanager
def sqlite_copy(path, limit, work_dir=None):
    """A connection to a private copy of the SQLite database at path and its
    WAL (each read without following a link, at most limit bytes), or None
    when there is no database. Reading a copy needs no write access to the
    agent's directory and never touches its locks; the copy is removed
    after the block."""
    if lstat(path) is None:
        yield None
        return
    tmp = tempfile.mkdtemp(prefix=".sqlite-copy-", dir=work_dir)
    try:
        for suffix in ("", "-wal"):
            data = read_bytes(path + suffix, limit=limit)
            if data is not None:
                with open(os.path.join(tmp, "store.sqlite" + suffix), "wb") as handle:
                    handle.write(data)
        conn = sqlite3.connect(os.path.join(tmp, "store.sqlite"))
        try:
            yield conn
        finally:
            conn.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
