# -*- coding: utf-8 -*-
# Copyright: agentfleet.vps developers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Where an OpenClaw process keeps Node.js's compiled code between runs.

OpenClaw turns on Node's compile cache under the process's temp dir. A
gateway's /tmp is private (PrivateTmp=yes) and thrown away at every stop,
so each start compiled the whole bundle again: about a fifth of a start's
CPU. A directory that outlives the process keeps it. Each agent's own
processes (its gateway and the CLI runs as its user) share one in its
state directory; root's runs of OpenClaw (config validation) use one of
root's, so no process ever loads code another user could have written.

OpenClaw's launcher re-executes itself when NODE_COMPILE_CACHE does not
name the versioned directory it wants; the second variable tells it the
re-exec has happened, so the gateway stays the unit's main process.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

# Root's; an agent's is in the fleet plan (compile_cache of its entry).
ROOT_DIR = "/var/cache/agentfleet/openclaw-compile-cache"


def env(directory=None):
    """Environment that points an OpenClaw process at directory (root's
    when none is given)."""
    return {"NODE_COMPILE_CACHE": directory or ROOT_DIR, "OPENCLAW_PACKAGED_COMPILE_CACHE_RESPAWNED": "1"}


def env_args(directory=None):
    """The same as `/usr/bin/env` arguments, for a command line."""
    return " ".join("%s=%s" % item for item in sorted(env(directory).items()))
