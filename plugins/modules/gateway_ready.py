#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: agentfleet.vps developers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: gateway_ready
short_description: Wait until OpenClaw gateways answer C(/readyz)
version_added: 0.1.0
description:
  - Polls C(http://127.0.0.1:PORT/readyz) of every listed gateway at the same time until
    each reports C(ready), or the timeout passes.
  - When a gateway is not ready in time the task fails, naming each such agent with the
    last lines of its unit's journal.
  - Never changes anything.
author:
  - agentfleet.vps developers (@agentfleet)
options:
  user:
    description: Owner of the user manager that runs the gateways (for their journals).
    type: str
    required: true
  gateways:
    description: The gateways to wait for.
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description: Agent name.
        type: str
        required: true
      port:
        description: Gateway base port.
        type: int
        required: true
      unit:
        description: User unit that runs the gateway.
        type: str
        required: true
  timeout:
    description: Seconds to wait for all gateways together.
    type: int
    default: 240
  journal_lines:
    description: Journal lines to show for each gateway that is not ready.
    type: int
    default: 30
extends_documentation_fragment:
  - agentfleet.vps.attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
"""

EXAMPLES = r"""
- name: Wait for the fleet
  agentfleet.vps.gateway_ready:
    user: openclaw
    gateways:
      - name: coder
        port: 19000
        unit: openclaw-gateway-coder.service
"""

RETURN = r"""
gateways:
  description: Readiness of each gateway, in the order given.
  returned: always
  type: list
  elements: dict
  sample:
    - name: coder
      port: 19000
      ready: true
      detail: '{"ready":true,"failing":[]}'
"""

import json
import time
import urllib.error
from concurrent.futures import ThreadPoolExecutor

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.urls import open_url

from ansible_collections.agentfleet.vps.plugins.module_utils.systemd_user import UserManager


def probe(port):
    """(ready, detail) of one gateway right now."""
    url = "http://127.0.0.1:%d/readyz" % port
    try:
        with open_url(url, timeout=5, use_proxy=False) as response:
            body = response.read(4096).decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        body = exc.read(4096).decode("utf-8", "replace")
    except (OSError, ValueError) as exc:
        return False, "no answer on port %d: %s" % (port, exc)
    try:
        return bool(json.loads(body).get("ready")), body[:300]
    except ValueError:
        return False, "unexpected answer: %s" % body[:300]


def wait_for(port, deadline):
    ready, detail = probe(port)
    while not ready and time.monotonic() < deadline:
        time.sleep(2)
        ready, detail = probe(port)
    return ready, detail


def main():
    module = AnsibleModule(
        argument_spec=dict(
            user=dict(type="str", required=True),
            gateways=dict(type="list", elements="dict", required=True, options=dict(
                name=dict(type="str", required=True),
                port=dict(type="int", required=True),
                unit=dict(type="str", required=True),
            )),
            timeout=dict(type="int", default=240),
            journal_lines=dict(type="int", default=30),
        ),
        supports_check_mode=True,
    )
    gateways = module.params["gateways"]
    deadline = time.monotonic() + module.params["timeout"]
    with ThreadPoolExecutor(max_workers=max(1, len(gateways))) as pool:
        answers = list(pool.map(lambda g: wait_for(g["port"], deadline), gateways))

    results = [dict(name=g["name"], port=g["port"], ready=ready, detail=detail)
               for g, (ready, detail) in zip(gateways, answers)]
    failed = [(g, r) for g, r in zip(gateways, results) if not r["ready"]]
    if failed:
        manager = UserManager(module.run_command, module.params["user"])
        parts = []
        for gateway, result in failed:
            parts.append("agent '%s' (port %d, %s) is not ready after %d s: %s\nlast %d journal lines:\n%s" % (
                gateway["name"], gateway["port"], gateway["unit"], module.params["timeout"], result["detail"],
                module.params["journal_lines"], manager.journal(gateway["unit"], module.params["journal_lines"])))
        module.fail_json(msg="\n\n".join(parts), gateways=results)
    module.exit_json(changed=False, gateways=results)


if __name__ == "__main__":
    main()
