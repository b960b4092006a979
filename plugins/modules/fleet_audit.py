#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: agentfleet.vps developers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: fleet_audit
short_description: Audit the agent fleet on demand and return the findings (read-only)
version_added: 0.1.0
description:
  - Runs the oversight audit's checks - the same code the oversight role's timer runs every
    5 minutes as C(agentfleet-audit) - and returns every finding with its rule, severity, agent
    and evidence.
  - "Rules: C(agent-down) (unit not active or C(/health) not answering), C(agent-restarted)
    (systemd's NRestarts grew since the last audit), C(config-drift) (C(openclaw.json) is neither
    its last good copy nor the last file config_change wrote), C(constitution-tampered) (a rendered
    constitution file or the C(AGENTS.md) block differs from what the deploy rendered),
    C(push-without-green-ci) (a commit reached a tracked branch and its CI status is not success),
    C(rate-limit) (more rate-limit events in a gateway log than the threshold), C(fallback-output)
    (a turn answered by a fallback model; needs review before commit), C(handoff-stale)
    (C(HANDOFF.md) missing, with empty sections, or behind the agent's session activity),
    C(watchdog-incident), and with O(reviewer) the LLM reviewer's C(reviewer-finding) and
    C(reviewer-error)."
  - Read-only - writes no report, sends no alert and leaves the timer's state alone; a finding's
    C(new) says whether the timer has not reported it yet. Run it as root, like the timer (it reads
    each agent's user manager and files, which no agent's user may read all of).
  - O(fail_on) fails the task when a finding of that severity or worse exists.
author:
  - agentfleet.vps developers (@agentfleet)
options:
  config:
    description: The audit config the oversight role wrote.
    type: path
    default: /etc/agentfleet/oversight.json
  fail_on:
    description: Fail when a finding of this severity or worse exists; V(never) only reports.
    type: str
    choices: [never, info, warning, critical]
    default: never
  reviewer:
    description:
      - Also ask the configured LLM reviewer (costs a model call). The timer always asks it when
        one is configured.
    type: bool
    default: false
extends_documentation_fragment:
  - agentfleet.vps.attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
notes:
  - The report schema is the one the timer writes to C(latest.json) in the report directory
    (README, section "Oversight").
"""

EXAMPLES = r"""
- name: Audit the fleet and fail on critical findings
  agentfleet.vps.fleet_audit:
    fail_on: critical
  become: true
  register: audit

- name: Show what is wrong
  ansible.builtin.debug:
    msg: "{{ audit.findings | map(attribute='summary') | list }}"
"""

RETURN = r"""
findings:
  description: Every finding, most severe first.
  returned: always
  type: list
  elements: dict
  contains:
    key:
      description: Stable id; the same problem has the same key in the next audit.
      type: str
    rule:
      description: Rule id, for example C(agent-down).
      type: str
    severity:
      description: V(info), V(warning) or V(critical).
      type: str
    agent:
      description: The agent, or C(-) for the fleet.
      type: str
    summary:
      description: One line for humans.
      type: str
    evidence:
      description: What the rule saw (paths, checksums, log lines, commit, unit state).
      type: dict
    new:
      description: Not reported by the timer's previous audit.
      type: bool
  sample:
    - key: 3f0c9a1b2d4e5f60
      rule: agent-down
      severity: critical
      agent: coder
      summary: "unit openclaw-gateway-coder.service is inactive; GET http://127.0.0.1:19000/health: [Errno 111] Connection refused"
      evidence: {unit: openclaw-gateway-coder.service, ActiveState: inactive}
      new: true
counts:
  description: Number of findings per severity.
  returned: always
  type: dict
  sample: {critical: 1, warning: 0, info: 0}
agents:
  description: Each agent's unit state, health answer and NRestarts.
  returned: always
  type: list
  elements: dict
reviewer:
  description: What the reviewer did - V(disabled), V(not asked), V(skipped) (no session activity), V(ok) or V(error).
  returned: always
  type: dict
window:
  description: The time window of the log, push and incident checks (since the timer's last audit).
  returned: always
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.agentfleet.vps.plugins.module_utils.host_programs import audit
from ansible_collections.agentfleet.vps.plugins.module_utils.host_programs.audit_checks import FINDING_SEVERITIES


def main():
    module = AnsibleModule(
        argument_spec=dict(
            config=dict(type="path", default=audit.DEFAULT_CONFIG),
            fail_on=dict(type="str", choices=["never"] + list(FINDING_SEVERITIES), default="never"),
            reviewer=dict(type="bool", default=False),
        ),
        supports_check_mode=True,
    )
    try:
        config = audit.load_config(module.params["config"])
    except (audit.AuditError, ValueError, OSError) as exc:
        module.fail_json(msg="cannot read the audit config: %s" % exc)
    report, _state = audit.collect(config, audit.load_state(config["report_dir"]),
                                   use_reviewer=module.params["reviewer"])
    result = dict(changed=False, findings=report["findings"], counts=report["counts"], agents=report["agents"],
                  reviewer=report["reviewer"], window=report["window"])
    fail_on = module.params["fail_on"]
    if fail_on != "never":
        worst = [f for f in report["findings"] if FINDING_SEVERITIES.index(f["severity"]) >= FINDING_SEVERITIES.index(fail_on)]
        if worst:
            module.fail_json(msg="%d finding(s) of severity %s or worse:\n- %s" % (
                len(worst), fail_on, "\n- ".join(audit.alert_line(f) for f in worst)), **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
