"""zstd.decompress on a real compressed transcript row from an OpenClaw
gateway, and on what an agent could leave in its own store instead:
garbage, a cut-off frame, a frame bigger than the cap (with and without
its size in the header)."""

import json
import os
import struct

import pytest

from ansible_collections.agentfleet.vps.plugins.module_utils.host_programs import zstd

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures")
# event_utf8_bytes of the real row, as OpenClaw stored it.
REAL_SIZE = 13305


@pytest.fixture
def real_row():
    with open(os.path.join(FIXTURES, "transcript_tool_result.zst"), "rb") as handle:
        return handle.read()


def rle_frame(byte, count):
    """A hand-made zstd frame whose header does not say how big it is (no
    Frame_Content_Size): one RLE block repeating `byte` count times."""
    assert count <= 128 * 1024
    magic = struct.pack("<I", 0xFD2FB528)
    descriptor = bytes([0x00])  # no content size, not single segment, no checksum, no dictionary
    window = bytes([7 << 3])  # window of 2**(10+7) = 128 KiB
    block = (1 | (1 << 1) | (count << 3)).to_bytes(3, "little")  # last block, RLE, count bytes
    return magic + descriptor + window + block + byte


def test_the_real_row_decodes_to_the_tool_result_event(real_row):
    out = zstd.decompress(real_row, 4 * 1024 * 1024)
    assert len(out) == REAL_SIZE
    event = json.loads(out)
    assert event["type"] == "message"
    assert event["message"]["role"] == "toolResult" and event["message"]["toolName"] == "read"
    assert event["message"]["content"][0]["text"].startswith("# AGENTS.md - Your Workspace")
    # Any bytes-like value SQLite hands back works the same.
    assert zstd.decompress(memoryview(real_row), REAL_SIZE) == out


def test_a_limit_smaller_than_the_content_is_refused(real_row):
    assert len(zstd.decompress(real_row, REAL_SIZE)) == REAL_SIZE
    for limit in (REAL_SIZE - 1, 1000, 0):
        with pytest.raises(zstd.ZstdError):
            zstd.decompress(real_row, limit)


def test_a_frame_without_its_size_is_capped_too():
    frame = rle_frame(b"a", 100000)
    assert zstd.decompress(frame, 100000) == b"a" * 100000
    with pytest.raises(zstd.ZstdError):
        zstd.decompress(frame, 99999)


@pytest.mark.parametrize("data", [b"", b"not zstd at all", b'{"type": "message"}', os.urandom(64),
                                  struct.pack("<I", 0xFD2FB528)])
def test_garbage_is_refused(data):
    with pytest.raises(zstd.ZstdError):
        zstd.decompress(data, 1024 * 1024)


def test_a_truncated_frame_is_refused(real_row):
    for cut in (len(real_row) // 2, len(real_row) - 1, 8):
        with pytest.raises(zstd.ZstdError):
            zstd.decompress(real_row[:cut], 1024 * 1024)
    with pytest.raises(zstd.ZstdError):
        zstd.decompress(rle_frame(b"a", 1000)[:-1], 1024 * 1024)


def test_zstd_error_is_a_value_error():
    # The transcript reader turns a row's ValueError into an "unreadable"
    # event instead of giving up on the whole store.
    with pytest.raises(ValueError):
        zstd.decompress(b"garbage", 10)


@pytest.mark.parametrize("value", ["a text value", 10 ** 12, 1.5, None])
def test_a_value_that_is_no_bytes_is_refused(value):
    # What SQLite returns for an event_zstd the agent stored as text or a
    # number: refused, not converted (bytes(10 ** 12) would be 1 TB).
    with pytest.raises(zstd.ZstdError):
        zstd.decompress(value, 1024)
