# -*- coding: utf-8 -*-
# Copyright: agentfleet.vps developers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Each agent's backups: OpenClaw's own archive, made as the agent, kept by root.

agentfleet-backup (the backup timer runs it as root) asks `openclaw backup
create --verify` as each agent's user for an archive of its state
directory and workspace (OpenClaw snapshots its SQLite databases itself),
copies it into root's directory without following a path the agent
controls, writes its checksum beside it and keeps the newest ones.
restore() is the agent_restore module's: the archive checked against that
checksum, unpacked by `openclaw backup restore` as the agent into a
staging directory, checked, swapped in, the gateway started and awaited,
and everything put back when it is not ready. Standard library only.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import pwd
import re
import sys
from concurrent.futures import ThreadPoolExecutor

from ansible_collections.agentfleet.vps.plugins.module_utils import compile_cache, config_txn, fileops
from ansible_collections.agentfleet.vps.plugins.module_utils.host_programs import backup_offsite
from ansible_collections.agentfleet.vps.plugins.module_utils.files import last_json
from ansible_collections.agentfleet.vps.plugins.module_utils.systemd_user import UserManager, exited, run_command

DEFAULT_CONFIG = "/etc/agentfleet/backup.json"
# An archive's name is its time; its manifest (checksum, size, what
# OpenClaw said) lies beside it. Names sort in time order.
ARCHIVE = re.compile(r"^(\d{8}T\d{6}Z)\.tar\.gz$")
# In the agent's home, outside its state directory (the next archive would
# carry it), the agent's own: what OpenClaw writes and what root hands it.
WORK_DIR = ".agentfleet-backup"
# Never taken from an archive: the deploy's own (secrets and config come
# from the inventory and config_change, whose backups live elsewhere).
KEEP_LIVE = ("gateway.env", "openclaw.json")
# Root's files in the workspace (the constitution role's): stay as they are.
LAW = ("CONSTITUTION.md", "VIOLATIONS.md", "AGENTS.md", "ALERTS.md")
CHUNK = 1 << 20
# The top directory of an OpenClaw archive, as its restore names it.
ARCHIVE_ROOT = re.compile(r"^[0-9A-Za-z][0-9A-Za-z.+_-]*$")


# What OpenClaw's CLI (the agent's process) says of its archive goes into
# root's manifest only in these shapes.
CREATED_AT = re.compile(r"^[0-9T:.+-]{1,40}Z?$")


def bounded(value, shape, limit=200):
    return value if isinstance(value, str) and len(value) <= limit and shape.match(value) else None


class BackupError(Exception):
    pass


def now_utc():
    return datetime.datetime.now(datetime.timezone.utc)


def stamp(now):
    return now.astimezone(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def manifest_path(directory, name):
    return os.path.join(directory, name[:-len(".tar.gz")] + ".json")


def listing(directory):
    """The manifests of the complete archives in one agent's directory,
    oldest first (an archive without its manifest was never finished)."""
    try:
        names = fileops.listdir(directory)
    except FileNotFoundError:
        return []
    found = []
    for name in sorted(n for n in names if ARCHIVE.match(n)):
        data = fileops.read_bytes(manifest_path(directory, name), limit=65536)
        try:
            manifest = json.loads(data) if data else None
        except ValueError:
            manifest = None
        if isinstance(manifest, dict) and manifest.get("archive") == name:
            found.append(manifest)
    return found


def sha256_of(path):
    digest = hashlib.sha256()
    with fileops.open_read(path) as handle:
        for block in iter(lambda: handle.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def checked(directory, name=None):
    """The manifest of archive `name` (the newest when None) whose bytes
    still have the recorded checksum; BackupError otherwise."""
    manifests = listing(directory)
    if not manifests:
        raise BackupError("no backup in %s" % directory)
    if name is None:
        manifest = manifests[-1]
    else:
        manifest = next((m for m in manifests if m["archive"] == name), None)
        if manifest is None:
            raise BackupError("no backup %s in %s; there are: %s" % (
                name, directory, ", ".join(m["archive"] for m in manifests)))
    path = os.path.join(directory, manifest["archive"])
    actual = sha256_of(path)
    if actual != manifest.get("sha256"):
        raise BackupError("%s is damaged: its sha256 is %s, %s recorded %s when it was made" % (
            path, actual, os.path.basename(manifest_path(directory, manifest["archive"])), manifest.get("sha256")))
    return manifest


def prune(directory, keep):
    """Remove all but the newest `keep` archives (and stray parts)."""
    manifests = listing(directory)
    removed = []
    for manifest in manifests[:max(0, len(manifests) - keep)]:
        for path in (os.path.join(directory, manifest["archive"]), manifest_path(directory, manifest["archive"])):
            fileops.remove(path)
        removed.append(manifest["archive"])
    fileops.clean_temps(directory)
    return removed


# ------------------------------------------------------------ as the agent

class Agent:
    """One agent as root acts on it: commands as its user (never as root),
    its user manager, its gateway's /readyz. Tests replace run."""

    def __init__(self, agent, openclaw, run=run_command):
        self.agent, self.openclaw, self._run = agent, openclaw, run
        self.name, self.user = agent["name"], agent["user"]
        self.home = pwd.getpwnam(self.user).pw_dir
        self.work = os.path.join(self.home, WORK_DIR)
        self.manager = UserManager(lambda argv, environ_update=None: run(argv, environ_update, 360), self.user)

    def run(self, argv, timeout=600, stdin=None, env=None):
        environ = dict(HOME=self.home, **(env or {}))
        return self._run(["runuser", "-u", self.user, "--"] + list(argv), environ, timeout, stdin)

    def openclaw_cli(self, *args, timeout=600):
        """OpenClaw's CLI on this agent's profile, as the agent, sharing its
        gateway's compiled code; (ok, answer, detail)."""
        env = compile_cache.env(self.agent.get("compile_cache"))
        rc, out, err = self.run([self.openclaw, "--profile", self.name] + list(args) + ["--json"],
                                timeout=timeout, env=env)
        answer = last_json(out)
        ok = rc == 0 and answer.get("ok", True) is True
        return ok, answer, "" if ok else "openclaw %s exited %d: %s" % (args[0], rc, (err or out).strip()[-600:])

    def fresh_work_dir(self):
        rc, _out, err = self.run(["sh", "-c", 'rm -rf -- "$1" && mkdir -m 0700 -- "$1"', "sh", self.work])
        if rc != 0:
            raise BackupError("agent %s: cannot make %s: %s" % (self.name, self.work, err.strip()[-300:]))

    def remove_work_dir(self):
        self.run(["rm", "-rf", "--", self.work])


# ------------------------------------------------------------------ create

def take(config, entry, now, trigger, agent=None):
    """One archive of one agent into root's directory; its manifest."""
    agent = agent or Agent(entry, config["openclaw"])
    directory = os.path.join(config["dir"], entry["name"])
    fileops.makedirs(directory, mode=0o700)
    name = stamp(now) + ".tar.gz"
    made = os.path.join(agent.work, name)
    agent.fresh_work_dir()
    try:
        ok, answer, detail = agent.openclaw_cli("backup", "create", "--output", made, "--verify")
        if not ok:
            raise BackupError("agent %s: %s" % (entry["name"], detail))
        if answer.get("archivePath") != made or answer.get("verified") is not True:
            raise BackupError("agent %s: openclaw backup create did not report a verified %s" % (entry["name"], made))
        digest, size = copy_in(made, os.path.join(directory, name), config.get("max_bytes"))
    finally:
        agent.remove_work_dir()
    manifest = {
        "archive": name, "agent": entry["name"], "created": now.astimezone(datetime.timezone.utc).isoformat(),
        "sha256": digest, "size": size, "trigger": trigger,
        "openclaw": {"archiveRoot": bounded(answer.get("archiveRoot"), ARCHIVE_ROOT),
                     "createdAt": bounded(answer.get("createdAt"), CREATED_AT), "verified": True},
    }
    write_manifest(directory, manifest)
    pruned = prune(directory, config.get("keep", 7))
    if config.get("offsite"):
        manifest = dict(manifest, offsite=offsite_copy(config["offsite"], directory, manifest))
        write_manifest(directory, manifest)
    return dict(manifest, pruned=pruned)


def write_manifest(directory, manifest):
    fileops.write_atomic(manifest_path(directory, manifest["archive"]),
                         (json.dumps(manifest, sort_keys=True) + "\n").encode(), mode=0o600)


def offsite_copy(remote, directory, manifest):
    """The archive and its manifest to the operator's SSH target; what
    happened, for the manifest (the audit reports a failed copy)."""
    try:
        with fileops.open_read(os.path.join(directory, manifest["archive"])) as archive:
            ok, detail = backup_offsite.send(remote, manifest["agent"], archive, manifest)
    except OSError as exc:
        ok, detail = False, "cannot read the archive to copy it: %s" % exc
    return {"ok": ok, "target": backup_offsite.target(remote), "detail": detail,
            "time": now_utc().isoformat(timespec="seconds")}


def copy_in(source, target, max_bytes=None):
    """Copy an agent's file (opened without following a link) into root's
    target, at most max_bytes; (sha256, size)."""
    digest, size = hashlib.sha256(), 0
    partial = target + ".partial"
    with fileops.open_read(source) as handle:
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        try:
            with os.fdopen(fd, "wb") as out:
                for block in iter(lambda: handle.read(CHUNK), b""):
                    size += len(block)
                    if max_bytes and size > max_bytes:
                        raise BackupError("%s is larger than max_bytes (%d)" % (source, max_bytes))
                    digest.update(block)
                    out.write(block)
                out.flush()
                os.fsync(out.fileno())
            os.rename(partial, target)
        except BaseException:
            fileops.remove(partial)
            raise
    return digest.hexdigest(), size


def run(config, now=None, trigger="manual", names=None, make_agent=None):
    """A backup of every agent (or of names), each stamped when it starts,
    `workers` at a time (OpenClaw's archiving is CPU-bound); one result
    per agent, in config order. One agent's failure does not stop the
    others."""
    def one(entry):
        try:
            agent = make_agent(entry) if make_agent else None
            manifest = take(config, entry, now or now_utc(), trigger, agent)
            result = {"agent": entry["name"], "ok": True, "archive": manifest["archive"],
                      "size": manifest["size"], "pruned": manifest["pruned"]}
            if "offsite" in manifest:
                result.update(offsite=manifest["offsite"], ok=manifest["offsite"]["ok"])
            return result
        except (BackupError, OSError, KeyError) as exc:
            return {"agent": entry["name"], "ok": False, "error": str(exc)[:1000]}
    entries = [e for e in config["agents"] if not names or e["name"] in names]
    with ThreadPoolExecutor(max_workers=max(1, config.get("workers", 2))) as pool:
        return list(pool.map(one, entries))


# ----------------------------------------------------------------- restore

# Runs as the agent's user (python3 -c, arguments in JSON): every move
# happens inside the agent's own directories, with its own rights. Root's
# files in the workspace and the deploy's files stay; everything moved is
# recorded so that `undo` puts it back.
SWAP_SCRIPT = r'''
import json, os, sys
args = json.loads(sys.argv[1])
def moves_for(live, staged, skip, prev):
    """(src, dst, mode) moves: the agent's own entries out, then the
    archive's in; an entry taking an old one's place gets its mode (the
    archive does not keep directory modes)."""
    uid = os.getuid()
    out, modes = [], {}
    for name in sorted(os.listdir(live)):
        st = os.lstat(os.path.join(live, name))
        if name not in skip and st.st_uid == uid:
            out.append((os.path.join(live, name), os.path.join(prev, name), None))
            modes[name] = st.st_mode & 0o7777
    taken = set(os.listdir(live))
    for name in sorted(os.listdir(staged)):
        if name not in skip and (name not in taken or name in modes):
            out.append((os.path.join(staged, name), os.path.join(live, name), modes.get(name)))
    return out
if args["undo"]:
    done = json.load(open(args["journal"]))
    for src, dst in reversed(done):
        if os.path.lexists(dst):
            os.rename(dst, src)
    sys.exit(0)
plan = []
for part in args["parts"]:
    if not os.path.isdir(part["staged"]):
        sys.exit("the archive has no %s" % part["live"])
    os.makedirs(part["prev"], mode=0o700)
    plan.append(part)
done = []
try:
    for part in plan:
        # Old out first, then the archive's in: a name in both swaps.
        for src, dst, mode in moves_for(part["live"], part["staged"], set(part["skip"]), part["prev"]):
            os.rename(src, dst)
            done.append((src, dst))
            if mode is not None and not os.path.islink(dst):
                os.chmod(dst, mode)
finally:
    with open(args["journal"], "w") as handle:
        json.dump(done, handle)
'''

CHECK_SCRIPT = r'''
import json, os, sqlite3, sys
state = sys.argv[1]
json.load(open(os.path.join(state, "openclaw.json")))
bad = []
for top, dirs, files in os.walk(state):
    for name in files:
        if name.endswith(".sqlite") or name.endswith(".db"):
            path = os.path.join(top, name)
            try:
                db = sqlite3.connect("file:%s?mode=ro" % path, uri=True)
                row = db.execute("PRAGMA quick_check").fetchone()
                db.close()
            except sqlite3.DatabaseError as exc:
                row = (str(exc),)
            if row[0] != "ok":
                bad.append("%s: %s" % (path, row[0]))
if bad:
    sys.exit("damaged databases: " + "; ".join(bad))
'''


def swap_parts(entry, staged_root, prev_root):
    """What the swap moves: the state directory (without the deploy's files
    and, when it lies inside, the workspace) and the workspace (without
    root's files)."""
    state, workspace = entry["state_dir"].rstrip("/"), entry["workspace"].rstrip("/")
    inside = workspace.startswith(state + "/")
    top = workspace[len(state) + 1:].split("/")[0] if inside else None
    payload = staged_root + "/payload/posix"
    return [
        {"live": state, "staged": payload + state, "prev": prev_root + "/state",
         "skip": list(KEEP_LIVE) + ([top] if top else [])},
        {"live": workspace, "staged": payload + workspace, "prev": prev_root + "/workspace", "skip": list(LAW)},
    ]


def wait_ready(agent, port, timeout):
    """(ready, detail): /readyz within timeout, the way config_change waits;
    ends early when the gateway's unit has exited."""
    def gone():
        try:
            return exited(agent.manager.show([agent.agent["unit"]]).get(agent.agent["unit"], {}))
        except RuntimeError:
            return None
    return config_txn.wait_ready(port, timeout, gone=gone)


def swap_in(agent, entry, parts, ready_timeout):
    """Stop, swap, start, wait; when not ready: stop, put back, start,
    wait. (ready, detail, ready after putting back, its detail)."""
    unit = entry["unit"]
    swap = {"parts": parts, "journal": agent.work + "/moves.json", "undo": False}
    agent.manager.systemctl("stop", unit)
    rc, _out, err = agent.run(["python3", "-I", "-c", SWAP_SCRIPT, json.dumps(swap)], timeout=300)
    ready, detail = False, "the swap failed: %s" % err.strip()[-600:]
    if rc == 0:
        agent.manager.restart(unit)
        ready, detail = wait_ready(agent, entry["port"], ready_timeout)
    if ready:
        return True, detail, None, None
    agent.manager.systemctl("stop", unit)
    agent.run(["python3", "-I", "-c", SWAP_SCRIPT, json.dumps(dict(swap, undo=True))], timeout=300)
    agent.manager.restart(unit)
    back, back_detail = wait_ready(agent, entry["port"], ready_timeout)
    return False, detail, back, back_detail


def restore(config, entry, name=None, check_mode=False, agent=None, ready_timeout=120):
    """Restore one agent from one of its archives (the newest when name is
    None). Nothing is changed before the archive has passed every check;
    when the gateway is not ready on it, the agent's own files are put
    back and started again. Returns a result dict; raises BackupError."""
    directory = os.path.join(config["dir"], entry["name"])
    manifest = checked(directory, name)
    result = {"agent": entry["name"], "archive": manifest["archive"], "created": manifest["created"]}
    if check_mode:
        return dict(result, changed=True)
    agent = agent or Agent(entry, config["openclaw"])
    staged_archive = os.path.join(agent.work, manifest["archive"])
    agent.fresh_work_dir()
    with fileops.open_read(os.path.join(directory, manifest["archive"])) as handle:
        rc, _out, err = agent.run(["sh", "-c", 'cat > "$1"', "sh", staged_archive], stdin=handle)
    if rc != 0:
        agent.remove_work_dir()
        raise BackupError("agent %s: cannot hand over the archive: %s" % (entry["name"], err.strip()[-300:]))
    ok, answer, detail = agent.openclaw_cli("backup", "restore", staged_archive, "--target", agent.work + "/staged")
    root = str(answer.get("archiveRoot") or "")
    staged_root = agent.work + "/staged/" + root
    if not ok or not ARCHIVE_ROOT.match(root):
        agent.remove_work_dir()
        raise BackupError("agent %s: %s is not a usable OpenClaw backup: %s" % (
            entry["name"], manifest["archive"], detail or "no archive root"))
    parts = swap_parts(entry, staged_root, agent.work + "/previous")
    rc, _out, err = agent.run(["python3", "-I", "-c", CHECK_SCRIPT, parts[0]["staged"]], timeout=300)
    if rc != 0:
        agent.remove_work_dir()
        raise BackupError("agent %s: %s fails its check: %s" % (entry["name"], manifest["archive"], err.strip()[-600:]))
    hold = os.path.join(config["hold_dir"], entry["name"]) if config.get("hold_dir") else None
    if hold:
        fileops.makedirs(config["hold_dir"], mode=0o700)
        fileops.write_atomic(hold, b"restore.yml is restoring it from a backup\n", mode=0o600)
    try:
        ready, detail, back, back_detail = swap_in(agent, entry, parts, ready_timeout)
    finally:
        if hold:
            fileops.remove(hold)
    if ready:
        agent.remove_work_dir()
        return dict(result, changed=True, ready=True, detail=detail)
    raise BackupError("agent %s: not ready on %s (%s); its previous files are back and it is %s (%s)" % (
        entry["name"], manifest["archive"], detail, "ready" if back else "NOT ready", back_detail))


# ------------------------------------------------------------------ program

def load_config(path):
    data = fileops.read_bytes(path)
    if data is None:
        raise BackupError("%s does not exist: deploy the backup role (playbooks/site.yml) first" % path)
    return json.loads(data)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="agentfleet-backup", description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--config", default=DEFAULT_CONFIG)
    parser.add_argument("--agent", action="append", help="only this agent (repeatable)")
    parser.add_argument("--list", action="store_true", help="print the kept archives, make none")
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config)
    except (BackupError, OSError, ValueError) as exc:
        sys.stderr.write("agentfleet-backup: %s\n" % exc)
        return 2
    if args.list:
        sys.stdout.write(json.dumps({a["name"]: listing(os.path.join(config["dir"], a["name"])) for a in config["agents"]
                                     if not args.agent or a["name"] in args.agent}, indent=2, sort_keys=True) + "\n")
        return 0
    # systemd sets INVOCATION_ID for a service (the timer starts it).
    trigger = "service" if os.environ.get("INVOCATION_ID") else "command"
    results = run(config, trigger=trigger, names=args.agent)
    for result in results:
        sys.stdout.write(json.dumps(result, sort_keys=True) + "\n")
    return 0 if all(r["ok"] for r in results) else 1
