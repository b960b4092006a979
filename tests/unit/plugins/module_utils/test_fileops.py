"""fileops against the tricks an agent with a shell can play on root:
a symlink at any component of a path, a lock redirected onto another
file, a hard link to a root file; and a full disk in the middle of a
write or an append."""

import errno
import os
import stat

import pytest

from ansible_collections.agentfleet.vps.plugins.module_utils import fileops


@pytest.fixture
def tree(tmp_path):
    """tmp/home/agent/state/ holding config.json and log.jsonl, and a
    'root' directory elsewhere with a file only root should own."""
    state = tmp_path / "home" / "agent" / "state"
    state.mkdir(parents=True)
    (state / "config.json").write_bytes(b'{"a": 1}\n')
    (state / "log.jsonl").write_bytes(b'{"n": 1}\n')
    secret = tmp_path / "root"
    secret.mkdir()
    (secret / "shadow").write_bytes(b"root only\n")
    os.chmod(secret / "shadow", 0o600)
    return tmp_path


def snapshot(directory):
    """(name, mode, uid, content) of every file under directory."""
    found = []
    for base, _dirs, files in os.walk(directory):
        for name in sorted(files):
            path = os.path.join(base, name)
            info = os.lstat(path)
            found.append((path, stat.S_IMODE(info.st_mode), info.st_uid, open(path, "rb").read()))
    return sorted(found)


OPERATIONS = {
    "read": fileops.read_bytes,
    "write": lambda path: fileops.write_atomic(path, b"evil\n", 0o644, 65534, 65534),
    "append": lambda path: fileops.append_line(path, "evil\n", 0o600, 65534, 65534),
    "lock": lambda path: fileops.lock(path).__enter__(),
    "makedirs": lambda path: fileops.makedirs(path + ".d", 0o755, 65534, 65534),
    "set_meta": lambda path: fileops.set_meta(path, 0o777, 65534, 65534),
    "write_if_changed": lambda path: fileops.write_if_changed(path, b"evil\n", 0o644, 65534, 65534),
    "remove": fileops.remove,
    "listdir": lambda path: fileops.listdir(os.path.dirname(path)),
    "lstat": fileops.lstat,
}


@pytest.mark.parametrize("operation", sorted(OPERATIONS))
@pytest.mark.parametrize("component", ["home", "agent", "state"])
def test_a_symlinked_directory_at_any_component_is_refused(tree, component, operation):
    # The agent swaps one directory of the path for a link to root's.
    parts = ["home", "agent", "state"]
    index = parts.index(component)
    linked = tree.joinpath(*parts[:index + 1])
    moved = tree / "moved"
    linked.rename(moved)
    os.symlink(tree / "root", linked)
    before = snapshot(tree / "root")
    path = str(tree.joinpath(*parts, "shadow"))
    with pytest.raises(fileops.UnsafePath):
        OPERATIONS[operation](path)
    assert snapshot(tree / "root") == before


@pytest.mark.parametrize("operation", ["read", "append", "lock", "set_meta"])
@pytest.mark.parametrize("make_link", [os.symlink, os.link], ids=["symlink", "hard-link"])
def test_a_linked_file_is_refused(tree, make_link, operation):
    # The agent puts a link to root's file where root reads or appends.
    path = tree / "home/agent/state/log.jsonl"
    path.unlink()
    make_link(tree / "root/shadow", path)
    before = snapshot(tree / "root")
    with pytest.raises(fileops.UnsafePath):
        OPERATIONS[operation](str(path))
    assert snapshot(tree / "root") == before


@pytest.mark.parametrize("operation", ["read", "append", "tail"])
def test_a_fifo_where_a_file_goes_is_refused_without_waiting_for_a_writer(tree, operation):
    # Opening a FIFO blocks until its other end opens: an agent's mkfifo
    # would hang root's run for good.
    path = tree / "home/agent/state/log.jsonl"
    path.unlink()
    os.mkfifo(path)
    run = {"read": fileops.read_bytes, "tail": lambda p: fileops.read_bytes(p, 4096, tail=True),
           "append": OPERATIONS["append"]}[operation]
    with pytest.raises(fileops.UnsafePath):
        run(str(path))


def test_a_write_over_a_symlink_replaces_the_link_not_its_target(tree):
    link = tree / "home/agent/state/config.json"
    link.unlink()
    os.symlink(tree / "root/shadow", link)
    before = snapshot(tree / "root")
    fileops.write_atomic(str(link), b"new\n", 0o640)
    assert not os.path.islink(link) and link.read_bytes() == b"new\n"
    assert snapshot(tree / "root") == before


def test_a_lock_cannot_be_redirected(tree):
    lock_path = tree / "home/agent/state/run.lock"
    os.symlink(tree / "root/elsewhere.lock", lock_path)
    with pytest.raises(fileops.UnsafePath):
        with fileops.lock(str(lock_path)):
            pass
    assert not (tree / "root/elsewhere.lock").exists()
    lock_path.unlink()
    with fileops.lock(str(lock_path)):
        assert stat.S_ISREG(os.lstat(lock_path).st_mode)


def test_mode_and_owner_are_set_on_the_descriptor(tree):
    path = str(tree / "home/agent/state/gateway.env")
    fileops.write_atomic(path, b"KEY=1\n", 0o600, 65534, 65534)
    info = os.lstat(path)
    assert stat.S_IMODE(info.st_mode) == 0o600
    if os.geteuid() == 0:
        assert (info.st_uid, info.st_gid) == (65534, 65534)
    assert fileops.read_bytes(path) == b"KEY=1\n"
    assert [n for n in os.listdir(os.path.dirname(path)) if n.endswith(".tmp")] == []


def test_append_creates_with_owner_and_keeps_whole_lines(tree):
    path = str(tree / "home/agent/state/changes.jsonl")
    assert fileops.append_line(path, '{"n": 1}\n', 0o600, 65534, 65534) is True
    assert fileops.append_line(path, '{"n": 2}\n') is False
    assert fileops.read_bytes(path) == b'{"n": 1}\n{"n": 2}\n'
    with pytest.raises(ValueError):
        fileops.append_line(path, "no newline")


def full_disk_after(monkeypatch, good_bytes):
    """os.write writes good_bytes in all, then fails with ENOSPC."""
    real_write = os.write
    left = {"bytes": good_bytes}

    def write(fd, data):
        if left["bytes"] <= 0:
            raise OSError(errno.ENOSPC, "No space left on device")
        written = real_write(fd, bytes(data[:left["bytes"]]))
        left["bytes"] -= written
        return written

    monkeypatch.setattr(fileops.os, "write", write)


def test_a_full_disk_leaves_the_live_file_and_no_temp(tree, monkeypatch):
    path = tree / "home/agent/state/config.json"
    full_disk_after(monkeypatch, 3)
    with pytest.raises(OSError) as raised:
        fileops.write_atomic(str(path), b'{"a": 2, "much": "longer"}\n')
    assert raised.value.errno == errno.ENOSPC
    assert path.read_bytes() == b'{"a": 1}\n'
    assert sorted(os.listdir(path.parent)) == ["config.json", "log.jsonl"]


def test_a_full_disk_leaves_no_half_line_in_a_log(tree, monkeypatch):
    path = tree / "home/agent/state/log.jsonl"
    full_disk_after(monkeypatch, 4)
    with pytest.raises(OSError):
        fileops.append_line(str(path), '{"n": 2, "text": "a long line"}\n')
    assert path.read_bytes() == b'{"n": 1}\n'


def test_missing_file_reads_as_none_and_relative_paths_are_refused(tree):
    assert fileops.read_bytes(str(tree / "home/agent/state/none")) is None
    with pytest.raises(ValueError):
        fileops.read_bytes("home/agent/state/config.json")
    with pytest.raises(fileops.UnsafePath):
        fileops.read_bytes(str(tree / "home/agent/../agent/state/config.json"))


def test_makedirs_sets_owner_and_mode_only_on_what_it_creates(tree):
    made = fileops.makedirs(str(tree / "home/agent/state/a/b"), 0o750, os.getuid(), os.getgid())
    assert made == [str(tree / "home/agent/state/a"), str(tree / "home/agent/state/a/b")]
    assert stat.S_IMODE(os.stat(tree / "home/agent/state/a/b").st_mode) == 0o750
    assert fileops.makedirs(str(tree / "home/agent/state/a/b")) == []


def test_remove_takes_a_symlink_away_and_leaves_its_target(tree):
    # A state directory the agent replaced by a link to root's directory:
    # removing "the state directory" must not empty root's.
    state = tree / "home/agent/state"
    state.rename(tree / "moved")
    os.symlink(tree / "root", state)
    before = snapshot(tree / "root")
    assert fileops.remove(str(state)) is True
    assert not os.path.lexists(state) and snapshot(tree / "root") == before
    assert fileops.remove(str(state)) is False


def test_remove_of_a_tree_does_not_follow_links_inside_it(tree):
    os.symlink(tree / "root", tree / "home/agent/state/escape")
    before = snapshot(tree / "root")
    fileops.remove(str(tree / "home/agent"))
    assert not (tree / "home/agent").exists() and snapshot(tree / "root") == before


def test_files_under_lists_regular_files_without_following_links(tree):
    os.symlink(tree / "root", tree / "home/agent/state/escape")
    os.symlink(tree / "root/shadow", tree / "home/agent/state/shadow")
    found = sorted(path for path, _info in fileops.files_under(str(tree / "home/agent")))
    assert found == [str(tree / "home/agent/state/config.json"), str(tree / "home/agent/state/log.jsonl")]
    assert list(fileops.files_under(str(tree / "nowhere"))) == []


def test_reads_can_be_bounded_from_either_end(tree):
    path = str(tree / "home/agent/state/config.json")
    assert fileops.read_bytes(path, limit=4) == b'{"a"'
    assert fileops.read_bytes(path, limit=4, tail=True) == b' 1}\n'


def test_write_if_changed_compares_content_mode_and_owner(tree):
    path = str(tree / "home/agent/state/config.json")
    os.chmod(path, 0o600)
    assert fileops.write_if_changed(path, b'{"a": 1}\n', 0o600) is False
    assert fileops.write_if_changed(path, b'{"a": 1}\n', 0o640, check_mode=True) is True
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert fileops.write_if_changed(path, b'{"a": 1}\n', 0o640) is True
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o640


def test_owner_of_a_missing_file_is_its_directory_s(tree):
    info = os.stat(tree / "home/agent/state")
    assert fileops.owner(str(tree / "home/agent/state/new")) == (info.st_uid, info.st_gid)
