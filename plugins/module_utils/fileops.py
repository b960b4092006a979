# -*- coding: utf-8 -*-
# Copyright: agentfleet.vps developers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""File operations for root working in trees an agent can write to.

An agent runs as the service user and can put a symlink (or a hard link)
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
import secrets
import stat

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


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


def open_dir(path):
    """Descriptor of the directory at path, reached without following any
    symlink; the caller closes it."""
    fd = os.open("/", _DIR_FLAGS)
    try:
        for part in _parts(path):
            try:
                next_fd = os.open(part, _DIR_FLAGS, dir_fd=fd)
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                    raise UnsafePath(exc.errno, "not a plain directory (a symlink?): %s" % part, path) from None
                raise
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
    try:
        fd = os.open(name, flags | os.O_NOFOLLOW | os.O_CLOEXEC, mode, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise UnsafePath(exc.errno, "is a symlink", path) from None
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


def read_bytes(path):
    """Content of the regular file at path, or None when it does not exist."""
    try:
        with _parent(path) as (dir_fd, name):
            fd, _info = _open_file(dir_fd, name, os.O_RDONLY, 0, path)
    except FileNotFoundError:
        return None
    with os.fdopen(fd, "rb") as handle:
        return handle.read()


def write_atomic(path, data, mode=0o644, uid=-1, gid=-1):
    """Replace the file at path with data: a new file in the same directory,
    mode and owner set on its descriptor, fsynced, renamed over the name."""
    with _parent(path) as (dir_fd, name):
        tmp = ".%s.%s.tmp" % (name, secrets.token_hex(6))
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


def append_line(path, text, mode=0o600, uid=-1, gid=-1):
    """Append text, one or more whole lines, to the file at path (created
    with mode and owner when missing). A write that fails part way is cut
    back, so readers never see half a line. True when the file was created."""
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
def lock(path, mode=0o600):
    """Hold an exclusive flock on the regular file at path (created when
    missing) for the block. A symlink or hard link put there is refused,
    so nobody can redirect the lock onto another file."""
    with _parent(path) as (dir_fd, name):
        fd, _info = _open_file(dir_fd, name, os.O_RDWR | os.O_CREAT, mode, path)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
