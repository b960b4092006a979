# -*- coding: utf-8 -*-
# Copyright: agentfleet.vps developers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Zstandard decompression for OpenClaw's compressed transcript rows,
with a hard cap on the output.

Python 3.14 has compression.zstd; older Pythons (Debian 12 and 13) call
libzstd.so.1 through ctypes: every Debian system has it, since dpkg and
apt depend on it. Standard library only.
"""

from __future__ import annotations

import ctypes
import ctypes.util

# ZSTD_getFrameContentSize's answers for "not in the header" and "not zstd".
_UNKNOWN = 2 ** 64 - 1
_ERROR = 2 ** 64 - 2
_LIB = []


class ZstdError(ValueError):
    pass


def _lib():
    if not _LIB:
        name = ctypes.util.find_library("zstd") or "libzstd.so.1"
        try:
            lib = ctypes.CDLL(name)
        except OSError as exc:
            raise ZstdError("cannot load libzstd (%s): install Debian's libzstd1" % exc) from None
        lib.ZSTD_getFrameContentSize.restype = ctypes.c_ulonglong
        lib.ZSTD_getFrameContentSize.argtypes = (ctypes.c_char_p, ctypes.c_size_t)
        lib.ZSTD_decompress.restype = ctypes.c_size_t
        lib.ZSTD_decompress.argtypes = (ctypes.c_char_p, ctypes.c_size_t, ctypes.c_char_p, ctypes.c_size_t)
        lib.ZSTD_isError.restype = ctypes.c_uint
        lib.ZSTD_isError.argtypes = (ctypes.c_size_t,)
        lib.ZSTD_getErrorName.restype = ctypes.c_char_p
        lib.ZSTD_getErrorName.argtypes = (ctypes.c_size_t,)
        _LIB.append(lib)
    return _LIB[0]


def decompress(data, limit):
    """The decompressed bytes of one zstd frame; ZstdError when it is not
    zstd, is damaged, or would be bigger than limit bytes."""
    # SQLite hands back whatever type the writer stored: bytes(str) fails
    # and bytes(int) would allocate that many bytes.
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise ZstdError("not a zstd frame: a %s value" % type(data).__name__)
    data = bytes(data)
    try:
        from compression import zstd  # Python 3.14+
    except ImportError:
        zstd = None
    if zstd is not None:
        decompressor = zstd.ZstdDecompressor()
        try:
            out = decompressor.decompress(data, max_length=limit)
        except zstd.ZstdError as exc:
            raise ZstdError(str(exc)) from None
        if not decompressor.eof:
            raise ZstdError("compressed row is larger than %d bytes or truncated" % limit)
        return out
    lib = _lib()
    size = lib.ZSTD_getFrameContentSize(data, len(data))
    if size == _ERROR:
        raise ZstdError("not a zstd frame")
    if size != _UNKNOWN and size > limit:
        raise ZstdError("compressed row holds %d bytes, more than the limit of %d" % (size, limit))
    capacity = limit if size == _UNKNOWN else size
    out = ctypes.create_string_buffer(max(capacity, 1))
    written = lib.ZSTD_decompress(out, capacity, data, len(data))
    if lib.ZSTD_isError(written):
        raise ZstdError("zstd: %s" % lib.ZSTD_getErrorName(written).decode("ascii", "replace"))
    return out.raw[:written]
