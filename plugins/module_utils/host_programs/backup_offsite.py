# -*- coding: utf-8 -*-
# Copyright: agentfleet.vps developers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The off-host copy of each backup: root's archive and its manifest to a
target the operator names, over SSH.

Root's key, the target's host key pinned in root's known_hosts file (no
trust on first use), no ssh config but ours, no agent forwarding. The
archive goes on ssh's standard input and lands under a temporary name
that is renamed when complete; the target keeps the newest `keep` of each
agent. Everything put into the remote command is either ours (agent
names are profile names, archive names are stamps) or quoted.

Standard library only.
"""

from __future__ import annotations

import base64
import json
import shlex
import subprocess

TIMEOUT = 3600

# Runs on the target (POSIX sh with GNU head): the archive from stdin, the
# manifest from its base64 argument, then the oldest beyond `keep` removed.
REMOTE = r"""set -eu
umask 077
dir=$1 name=$2 manifest=$3 keep=$4
mkdir -p -- "$dir"
cat > "$dir/.incoming-$name"
mv -f -- "$dir/.incoming-$name" "$dir/$name"
printf %s "$manifest" | base64 -d > "$dir/.incoming-$name.json"
mv -f -- "$dir/.incoming-$name.json" "$dir/${name%.tar.gz}.json"
ls -1 -- "$dir" | grep -E '^[0-9]{8}T[0-9]{6}Z\.tar\.gz$' | sort | head -n "-$keep" | while read -r old; do
  rm -f -- "$dir/$old" "$dir/${old%.tar.gz}.json"
done
"""


def target(remote):
    return "%s@%s:%s" % (remote["user"], remote["host"], remote["path"])


def ssh_argv(remote):
    return ["ssh", "-F", "/dev/null", "-i", remote["key_file"], "-o", "IdentitiesOnly=yes",
            "-o", "UserKnownHostsFile=" + remote["known_hosts_file"], "-o", "GlobalKnownHostsFile=/dev/null",
            "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "-o", "ForwardAgent=no",
            # The pinned line names the host as given, whatever the port.
            "-o", "HostKeyAlias=" + remote["host"], "-o", "ConnectTimeout=20", "-o", "ServerAliveInterval=15", "-o", "ServerAliveCountMax=4",
            "-p", str(remote.get("port", 22)), "-l", remote["user"], "--", remote["host"]]


def remote_command(directory, name, manifest, keep):
    """The one string ssh hands the target's shell: sh -c with our script
    and each value as its own quoted argument."""
    encoded = base64.b64encode((json.dumps(manifest, sort_keys=True) + "\n").encode("utf-8")).decode("ascii")
    parts = ("sh", "-c", REMOTE, "agentfleet-offsite", directory, name, encoded, str(int(keep)))
    return " ".join(shlex.quote(part) for part in parts)


def send(remote, agent, archive, manifest, runner=subprocess.run):
    """Copy one archive (an open binary file) and its manifest to the
    target; (ok, detail)."""
    directory = "%s/%s" % (remote["path"].rstrip("/"), agent)
    argv = ssh_argv(remote) + [remote_command(directory, manifest["archive"], manifest, remote.get("keep", 7))]
    try:
        done = runner(argv, stdin=archive, capture_output=True, timeout=TIMEOUT, check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        return False, "ssh to %s failed: %s" % (remote["host"], exc)
    if done.returncode != 0:
        said = (done.stderr or b"").decode("utf-8", "replace").strip()[-500:]
        return False, "ssh to %s exited %d: %s" % (remote["host"], done.returncode, said)
    return True, "copied to %s/%s" % (target(remote), agent)
