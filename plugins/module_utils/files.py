# -*- coding: utf-8 -*-
# Copyright: agentfleet.vps developers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""File helpers shared by the modules: env files, canonical JSON, and
writes that never leave a half-written file behind."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import tempfile

ENV_LINE = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)=(.*)$")


def read_bytes(path):
    """Current content of path, or None when it does not exist."""
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except FileNotFoundError:
        return None


def canonical_json(data):
    """The one byte form we write JSON in, so equal documents compare equal."""
    return (json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")


def parse_env(text):
    """KEY=value lines (systemd EnvironmentFile subset) -> dict."""
    values = {}
    for line in (text or "").splitlines():
        match = ENV_LINE.match(line.strip())
        if match:
            value = match.group(2)
            if len(value) >= 2 and value[0] == value[-1] == '"':
                value = value[1:-1].replace('\\"', '"').replace("\\\\", "\\")
            values[match.group(1)] = value
    return values


def read_env(path):
    """parse_env of the file at path; {} when it does not exist."""
    return parse_env((read_bytes(path) or b"").decode("utf-8", "replace"))


def render_env(values):
    """dict -> EnvironmentFile text, keys sorted, values double-quoted."""
    lines = []
    for key in sorted(values):
        value = str(values[key]).replace("\\", "\\\\").replace('"', '\\"')
        if "\n" in value:
            raise ValueError("environment value of %s contains a newline" % key)
        lines.append('%s="%s"' % (key, value))
    return ("\n".join(lines) + "\n").encode("utf-8")


def write_temp(directory, data, mode, uid=-1, gid=-1, prefix=".agentfleet-"):
    """Write data to a new temp file in directory (same filesystem as the
    target, so the final rename is atomic), fsync it, set mode and owner
    before anyone can see it, and return its path."""
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=prefix)
    try:
        os.fchmod(fd, mode)
        if uid != -1 or gid != -1:
            os.fchown(fd, uid, gid)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        os.unlink(tmp)
        raise
    return tmp


def write_if_changed(path, data, mode=0o644, check_mode=False):
    """Replace path atomically with data unless it already holds exactly
    that (directories created as needed); True when it changed (or, in
    check mode, would)."""
    if read_bytes(path) == data:
        return False
    if not check_mode:
        os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
        os.replace(write_temp(os.path.dirname(path), data, mode), path)
    return True


def append_line(path, text, mode=0o600):
    """Append text (one or more whole lines) with O_APPEND, so concurrent
    writers never interleave inside a line, and fsync it. True when the
    file was created."""
    created = not os.path.exists(path)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, mode)
    try:
        os.write(fd, text.encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)
    return created


@contextlib.contextmanager
def exclusive(lock_path):
    """Hold an exclusive flock on lock_path (created when missing) for the
    block: read-check-append sequences of two processes never interleave."""
    with open(lock_path, "a", encoding="utf-8") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield
