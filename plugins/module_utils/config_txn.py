# -*- coding: utf-8 -*-
# Copyright: agentfleet.vps developers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Validated, backed-up, verified config changes.

Shared by the config_change module, the agents role's own writes and the
watchdog's last-known-good restore. Standard library only at import time:
jsonschema, json5 and PyYAML are imported where they are needed, so the
same file runs on a VPS with nothing but Debian's python3.

Validation runs on the managed host, not in a controller-side action
plugin: the file, its lock, the OpenClaw that validates it and the unit
that must come back are all there, so read, validate, back up, write,
restart, verify and roll back happen in one process under one lock. The
runtime role installs Debian's python3-jsonschema for it.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import http.client
import json
import os
import re
import shlex
import shutil
import stat
import tempfile
import time
import urllib.error
import urllib.request

from ansible_collections.agentfleet.vps.plugins.module_utils import fileops, netio
from ansible_collections.agentfleet.vps.plugins.module_utils.files import canonical_json

SECRET_KEY = re.compile(r"(token|secret|password|passwd|api_?key|apikey|private_?key|authorization|cookie|credential)",
                        re.IGNORECASE)
MASK = "********"
# Seconds a rollback waits at least for the previous config to come back
# up: a fresh start of Node.js and OpenClaw took over 40 s on a busy 2-core host.
RECOVERY_SECONDS = 180


class ChangeError(Exception):
    """A change that cannot go ahead; errors are {path, message, source}."""

    def __init__(self, message, errors=None):
        super().__init__(message)
        self.errors = errors or []


# ---------------------------------------------------------------- documents

def load_document(text, what="document"):
    """Parse JSON, then JSON5, then YAML (OpenClaw reads JSON5; operators
    write YAML). Raises ChangeError naming what could not be read."""
    if isinstance(text, bytes):
        text = text.decode("utf-8")
    try:
        return json.loads(text)
    except ValueError as exc:
        first = exc
    with contextlib.suppress(ImportError):
        import json5
        with contextlib.suppress(ValueError):
            return json5.loads(text)
    with contextlib.suppress(ImportError):
        import yaml
        with contextlib.suppress(yaml.YAMLError):
            doc = yaml.safe_load(text)
            if isinstance(doc, (dict, list)):
                return doc
    raise ChangeError("%s is neither JSON, JSON5 nor YAML: %s" % (what, first),
                      [{"path": "$", "message": "unreadable %s: %s" % (what, first), "source": "parse"}])


def merge_patch(target, patch):
    """RFC 7386 JSON merge patch: objects merge, null removes a key,
    anything else (lists included) replaces."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def checksum(data):
    return None if data is None else hashlib.sha256(data).hexdigest()


def json_path(parts):
    """['gateway', 'port'] or 'gateway.port' -> '$.gateway.port'."""
    if isinstance(parts, str):
        parts = [p for p in parts.split(".") if p] if parts else []
    out = "$"
    for part in parts:
        out += "[%d]" % part if isinstance(part, int) else ".%s" % part
    return out


def mask_secrets(doc):
    """Copy of doc with the values of secret-looking keys replaced; objects
    under such keys (OpenClaw SecretRefs) are only references and kept."""
    if isinstance(doc, dict):
        return {k: (MASK if SECRET_KEY.search(str(k)) and isinstance(v, (str, int, float)) else mask_secrets(v))
                for k, v in doc.items()}
    if isinstance(doc, list):
        return [mask_secrets(v) for v in doc]
    return doc


def secret_values(doc):
    """Every value that mask_secrets would hide, to scrub from messages."""
    found = set()
    if isinstance(doc, dict):
        for key, value in doc.items():
            if SECRET_KEY.search(str(key)) and isinstance(value, str) and len(value) >= 4:
                found.add(value)
            else:
                found |= secret_values(value)
    elif isinstance(doc, list):
        for value in doc:
            found |= secret_values(value)
    return found


def scrub(text, secrets):
    for value in sorted(secrets, key=len, reverse=True):
        text = text.replace(value, MASK)
    return text


def masked_text(data):
    """Readable, secret-free canonical JSON of file bytes, for diffs."""
    if data is None:
        return ""
    try:
        return canonical_json(mask_secrets(load_document(data))).decode("utf-8")
    except (ChangeError, UnicodeDecodeError):
        return "(unreadable, %d bytes, sha256 %s)\n" % (len(data), checksum(data))


# --------------------------------------------------------------- validation

def schema_errors(doc, schema):
    """Every JSON Schema violation of doc, sorted by path."""
    import jsonschema  # Debian python3-jsonschema on the host (runtime role)

    validator = jsonschema.validators.validator_for(schema)(schema)
    errors = []
    for error in validator.iter_errors(doc):
        errors.append({"path": json_path(list(error.absolute_path)), "message": error.message[:500],
                       "source": "schema"})
    return sorted(errors, key=lambda e: (e["path"], e["message"]))


def run_candidate(run_command, command, data, basename):
    """The one way a candidate file is validated with a command (agent_files,
    config_change): command, with %s for the candidate's path, runs on a
    private copy of data named basename; (rc, out, err)."""
    workdir = tempfile.mkdtemp(prefix="agentfleet-validate-")
    try:
        candidate = os.path.join(workdir, basename)
        with open(candidate, "wb") as handle:
            handle.write(data)
        return run_command([part.replace("%s", candidate) for part in shlex.split(command)])
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def command_errors(run_command, command, data, basename):
    """run_candidate's verdict as errors: OpenClaw's --json answer gives one
    error per issue; any other validator gives one error with the tail of
    its output."""
    rc, out, err = run_candidate(run_command, command, data, basename)
    if rc == 0:
        return []
    with contextlib.suppress(ValueError, AttributeError, TypeError):
        issues = json.loads(out).get("issues") or []
        errors = [{"path": json_path(str(i.get("path", ""))), "message": str(i.get("message", ""))[:500],
                   "source": "command"} for i in issues]
        if errors:
            return errors
    tail = (out + err).strip()[-2000:] or "exit status %d" % rc
    return [{"path": "$", "message": "'%s' rejected the candidate: %s" % (command, tail), "source": "command"}]


# ------------------------------------------------------------------- health

def probe(url, status=(200,), body=None, timeout=5):
    """(healthy, detail) of one request to url right now."""
    request = urllib.request.Request(url, headers={"User-Agent": "agentfleet"})
    try:
        with netio.open_url(request, timeout, proxies=False) as response:
            code, text = response.status, response.read(4096).decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        code, text = exc.code, exc.read(4096).decode("utf-8", "replace")
    except (OSError, ValueError, http.client.HTTPException) as exc:
        # Whatever listens on a gateway's port may be the agent's own: a
        # reply that is not HTTP is a failed probe, never a crash.
        return False, "no answer from %s: %r" % (url, exc)
    if code not in status:
        return False, "%s answered %d, expected %s: %s" % (url, code, "/".join(map(str, status)), text[:200])
    if body and not re.search(body, text):
        return False, "%s answered %d without /%s/: %s" % (url, code, body, text[:200])
    return True, "%s answered %d: %s" % (url, code, text[:200])


# What a gateway's /readyz says when it is ready.
READY_BODY = r'"ready"\s*:\s*true'


def readyz(port, timeout=5):
    """(ready, detail) of the gateway on 127.0.0.1:port right now."""
    return probe("http://127.0.0.1:%d/readyz" % port, body=READY_BODY, timeout=timeout)


def wait_ready(port, seconds, gone=None, delay=2, check=None, sleep=time.sleep, clock=time.monotonic,
               gone_every=None):
    """The one wait for a gateway to come up (gateway_ready, the watchdog's
    verify, a restore): wait_healthy on its /readyz, probing until `seconds`
    have passed, ended early by gone(). check() replaces the request (the
    watchdog asks through its host); gone_every: see wait_healthy."""
    health = {"url": "http://127.0.0.1:%d/readyz" % port, "body": READY_BODY, "delay": delay, "timeout": 5,
              # one probe at the start and one at each delay until the deadline
              "retries": 1 + max(0, int(-(-max(0, seconds) // delay)))}
    return wait_healthy(health, sleep=sleep, clock=clock, gone=gone, check=check or (lambda: readyz(port)),
                        gone_every=gone_every)


def recovery_probe(health, seconds=RECOVERY_SECONDS):
    """health, waiting at least `seconds` in all: the previous config is
    known to work, and a start on a busy host can take longer than the
    budget a change gets."""
    delay = health.get("delay") or 2
    return dict(health, delay=delay, retries=max(health.get("retries") or 1, int(-(-seconds // delay))))


# Seconds between two questions to wait_healthy's gone().
GONE_SECONDS = 2


def wait_healthy(health, sleep=time.sleep, clock=time.monotonic, gone=None, check=None, gone_every=None):
    """Probe until healthy, or until retries or their time (retries x delay,
    plus one request's timeout) run out; (healthy, last detail). gone(),
    asked after a failed probe at most every GONE_SECONDS (it is a systemctl
    call), ends the wait early with its answer: why the service will not
    come up (its process exited), or None. gone_every: ask it only every
    that many seconds, the first time that long after the start. check(),
    when given, is the probe ((ok, detail)) instead of a request to
    health's url."""
    retries, delay, timeout = max(1, health.get("retries") or 1), health.get("delay", 2), health.get("timeout", 5)
    # A gateway that accepts and never answers costs a whole timeout per
    # probe; the deadline keeps the wait what retries x delay promise.
    deadline = clock() + retries * delay + timeout
    detail, asked = "", clock() if gone_every else None
    every = gone_every or GONE_SECONDS
    for attempt in range(retries):
        if attempt:
            if clock() >= deadline:
                break
            sleep(delay)
        if check:
            ok, detail = check()
        else:
            ok, detail = probe(health["url"], tuple(health.get("status") or (200,)), health.get("body"), timeout)
        if ok:
            return True, detail
        if gone and (asked is None or clock() - asked >= every):
            asked = clock()
            reason = gone()
            if reason:
                return False, "%s; last probe: %s" % (reason, detail)
    return False, detail


# -------------------------------------------------------------------- store

def _stamp():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ")


class ConfigStore:
    """One config file and its store: <name>.<UTC time>.bak backups (newest
    N kept), <name>.last-good, <name>.lock and changes.jsonl in store_dir.

    The file may sit in a directory its agent can write; the store should
    not (the roles put it under /var/lib/agentfleet, root only), or the
    agent could forge the baseline the drift check compares against. Every
    access goes through fileops, so no symlink is followed either side."""

    def __init__(self, path, store_dir=None, keep=10, mode=0o600):
        self.mode = mode  # of a file this store creates; an existing file keeps its own
        self.path = os.path.abspath(path)
        self.name = os.path.basename(self.path)
        self.dir = os.path.dirname(self.path)
        self.backup_dir = os.path.abspath(store_dir or os.path.join(self.dir, "config-backups"))
        self.keep = keep
        self.last_good_path = os.path.join(self.backup_dir, self.name + ".last-good")
        self.log_path = os.path.join(self.backup_dir, "changes.jsonl")
        self.lock_path = os.path.join(self.backup_dir, self.name + ".lock")

    def ensure_backup_dir(self):
        fileops.makedirs(self.backup_dir, 0o700)

    @contextlib.contextmanager
    def lock(self, timeout=300):
        """Exclusive per-file lock; two changes to one file never interleave."""
        self.ensure_backup_dir()
        try:
            with fileops.lock(self.lock_path, timeout=timeout):
                if fileops.lstat(self.dir) is not None:
                    fileops.clean_temps(self.path)
                yield
        except fileops.LockTimeout:
            raise ChangeError("%s is locked by another change for more than %d s (%s)"
                              % (self.path, timeout, self.lock_path)) from None

    def busy(self):
        """True while another process holds the lock (a change in flight)."""
        if fileops.lstat(self.lock_path) is None:
            return False
        try:
            with fileops.lock(self.lock_path, timeout=0):
                return False
        except fileops.LockTimeout:
            return True

    def read(self):
        """The file's bytes; None when missing. A link in its place (or in
        its path) is refused: a change applies to a file, not to whatever
        an agent pointed its name at."""
        try:
            return fileops.read_bytes(self.path)
        except fileops.UnsafePath as exc:
            raise ChangeError("%s is not a regular file in a plain directory (%s); refusing to touch it. "
                              "Run playbooks/site.yml to put the agent's config back."
                              % (self.path, exc.strerror),
                              [{"path": "$", "message": "not a regular file: %s" % exc.strerror, "source": "file"}]) \
                from None

    def write(self, data, uid=-1, gid=-1):
        """Replace the file by rename: a reader sees the old or the new file,
        never a mix. Mode and owner are the existing file's (or the
        directory's owner and self.mode) unless given."""
        info = fileops.lstat(self.path)
        mode = stat.S_IMODE(info.st_mode) if info is not None and stat.S_ISREG(info.st_mode) else self.mode
        if uid == -1:
            uid, gid = fileops.owner(self.path if info is not None and stat.S_ISREG(info.st_mode) else self.dir)
        fileops.write_atomic(self.path, data, mode, uid, gid)

    def put(self, data):
        """write(data), or remove the file when data is None."""
        if data is None:
            fileops.remove(self.path)
        else:
            self.write(data)

    def backups(self):
        """Backup paths, oldest first."""
        prefix = self.name + "."
        return sorted(os.path.join(self.backup_dir, n) for n in fileops.listdir(self.backup_dir)
                      if n.startswith(prefix) and n.endswith(".bak"))

    def backup(self, data):
        """Keep data as a new backup; drop all but the newest `keep`."""
        self.ensure_backup_dir()
        target = os.path.join(self.backup_dir, "%s.%s.bak" % (self.name, _stamp()))
        fileops.write_atomic(target, data, 0o600)
        for old in self.backups()[:-self.keep] if self.keep > 0 else []:
            fileops.remove(old)
        return target

    def last_good(self):
        return fileops.read_bytes(self.last_good_path)

    def promote(self, data):
        """Move last known good to data; True when it moved."""
        if self.last_good() == data:
            return False
        self.ensure_backup_dir()
        fileops.write_atomic(self.last_good_path, data, 0o600)
        return True

    def resolve_backup(self, name):
        """A backup by file name or path; must be one of backups()."""
        path = name if os.path.isabs(name) else os.path.join(self.backup_dir, name)
        if path not in self.backups():
            raise ChangeError("no backup %s in %s; there are: %s" % (
                name, self.backup_dir, ", ".join(os.path.basename(b) for b in self.backups()) or "none"))
        return fileops.read_bytes(path)

    def log(self, entry):
        """Append one JSON line to the change log."""
        self.ensure_backup_dir()
        line = json.dumps(dict({"time": datetime.datetime.now(datetime.timezone.utc).isoformat(),
                                "file": self.path}, **entry), sort_keys=True) + "\n"
        fileops.append_line(self.log_path, line, 0o600)


# -------------------------------------------------------------- transaction

def restart_and_verify(restart, verify):
    """(ok, detail); restart and verify are callables returning (ok,
    detail), or None when there is nothing to restart or probe."""
    if restart is not None:
        ok, detail = restart()
        if not ok:
            return False, detail
    if verify is not None:
        return verify()
    return True, "no health probe configured"


def apply_verified(store, new, restart=None, verify=None, recover=None, verify_recovery=None):
    """Back up, write new, restart, verify; on failure put the previous
    bytes back, restart (with recover, when given) and verify again (with
    verify_recovery, when given). Call with the store's lock held.

    Returns dict(ok, backup, detail, recovered, recovery_detail)."""
    old = store.read()
    backup = store.backup(old) if old is not None else None
    store.put(new)
    ok, detail = restart_and_verify(restart, verify)
    if ok:
        store.promote(new)
        return {"ok": True, "backup": backup, "detail": detail}
    store.put(old)
    recovered, recovery_detail = restart_and_verify(recover or restart, verify_recovery or verify)
    return {"ok": False, "backup": backup, "detail": detail,
            "recovered": recovered, "recovery_detail": recovery_detail}
