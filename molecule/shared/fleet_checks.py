"""Helpers shared by the scenarios' testinfra checks: the fleet as the
inventory describes it, each agent's user and its user manager, /readyz,
and plays run on the controller against the scenario's instance."""

import base64
import json
import os
import shlex
import subprocess
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
# fleet_user as every scenario leaves it: no user of its own any more, the
# prefix of the agents' users (agent NAME runs as openclaw-NAME).
FLEET_USER = "openclaw"


# A scenario may give its instance a smaller fleet in host_vars.
FLEET_FILES = [ROOT / "molecule" / os.environ.get("MOLECULE_SCENARIO_NAME", "default") / "host_vars"
               / f"agentfleet-molecule-{os.environ.get('MOLECULE_SCENARIO_NAME', 'default')}.yml",
               ROOT / "inventories/local/group_vars/fleet.yml"]


def fleet_agents():
    for path in FLEET_FILES:
        if path.exists():
            with open(path, encoding="utf-8") as handle:
                data = yaml.safe_load(handle) or {}
            if "fleet_agents" in data:
                return data["fleet_agents"]
    raise AssertionError("no fleet_agents in %s" % FLEET_FILES)


def agent_names():
    return [agent["name"] for agent in fleet_agents()]


def unit(name):
    return f"openclaw-gateway-{name}.service"


def user_of(name):
    """The Linux user (and its own primary group) agent name runs as."""
    return f"{FLEET_USER}-{name}"


def home_of(name):
    return f"/home/{user_of(name)}"


def state_dir(name):
    return f"{home_of(name)}/.openclaw-{name}"


def unit_file(name):
    return f"{home_of(name)}/.config/systemd/user/{unit(name)}"


def as_user(host, name, script):
    """The shell script as agent name's user, outside any sandbox."""
    return host.run("runuser -u %s -- sh -c %s" % (user_of(name), shlex.quote(script)))


def user_systemctl(host, name, *args):
    """systemctl --user against agent name's own (lingering) user manager."""
    uid = host.user(user_of(name)).uid
    cmd = " ".join(["runuser -u", user_of(name), "-- env", f"XDG_RUNTIME_DIR=/run/user/{uid}", "systemctl --user", *args])
    return host.run(cmd)


def unit_props(host, name):
    out = user_systemctl(host, name, "show", "-p", "ActiveState,UnitFileState,MainPID,NRestarts", unit(name)).stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def started_at(host, name):
    """When the unit last entered active, in microseconds of the monotonic clock."""
    out = user_systemctl(host, name, "show", "-p", "ActiveEnterTimestampMonotonic", unit(name)).stdout
    return int(out.strip().split("=", 1)[1])


def main_pids(host, names=None):
    return {name: unit_props(host, name)["MainPID"] for name in (agent_names() if names is None else names)}


def readyz(host, port):
    cmd = host.run(f"curl -s --max-time 5 http://127.0.0.1:{port}/readyz")
    try:
        return json.loads(cmd.stdout)
    except ValueError:
        return {}


def ports(host, names=None):
    """Each agent's gateway port, from the openclaw.json the last run wrote."""
    return {name: json.loads(host.file(f"{state_dir(name)}/openclaw.json").content_string)["gateway"]["port"]
            for name in (agent_names() if names is None else names)}


def all_ready(host, names=None):
    return all(readyz(host, port).get("ready") is True for port in ports(host, names).values())


def wait_until(predicate, timeout, interval=2):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


def _playbook(extra, verbosity, playbook):
    env = dict(os.environ, ANSIBLE_STDOUT_CALLBACK="ansible.posix.json", ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"))
    # No extra callbacks (e.g. profile_tasks from the caller's shell): they
    # would print around the JSON document.
    env.pop("ANSIBLE_CALLBACKS_ENABLED", None)
    argv = ["ansible-playbook", "-i", os.environ["MOLECULE_INVENTORY_FILE"], str(ROOT / "playbooks" / playbook),
            *extra]
    if verbosity:
        argv.append("-" + "v" * verbosity)
        env.pop("ANSIBLE_STDOUT_CALLBACK")
    return argv, env


def run_playbook(*extra, verbosity=None, playbook="site.yml"):
    """ansible-playbook playbooks/<playbook> against this scenario's
    instance, on the controller, with the JSON callback so results can be
    inspected."""
    argv, env = _playbook(extra, verbosity, playbook)
    return subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, check=False)


def start_playbook(*extra, playbook="site.yml"):
    """run_playbook in the background, for checks while it works; finish
    it with finish_playbook."""
    argv, env = _playbook(extra, None, playbook)
    return subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish_playbook(proc, timeout=1800):
    """The CompletedProcess of a start_playbook, as run_playbook returns it."""
    out, err = proc.communicate(timeout=timeout)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def why(result, limit=4000):
    """What a failed play says about its failure, for an assert message: each
    failed or unreachable task's name and message (the JSON callback's
    output; the end of stdout otherwise), then the end of stderr."""
    try:
        report = json.loads(result.stdout)
    except ValueError:
        return result.stdout[-limit:] + result.stderr[-limit // 2:]
    lines = []
    for play in report.get("plays", []):
        for task in play["tasks"]:
            for name, outcome in task["hosts"].items():
                if outcome.get("failed") or outcome.get("unreachable"):
                    detail = outcome.get("msg") or [i.get("msg") for i in outcome.get("results", []) if i.get("failed")]
                    lines.append(f"{name}: {task['task']['name']}: {str(detail)[:limit // 4]}")
    return "\n".join(lines)[-limit:] + "\n" + result.stderr[-limit // 2:]


def task_results(json_output, task_name):
    report = json.loads(json_output)
    for play in report["plays"]:
        for task in play["tasks"]:
            # Role tasks are named "namespace.collection.role : name".
            if task["task"]["name"].split(" : ")[-1] == task_name:
                return next(iter(task["hosts"].values()))
    raise AssertionError(f"task {task_name!r} not in the play output")


class FakeEndpoint:
    """fake_endpoint.py running in the instance as a transient system unit:
    the model provider, LLM and webhook stand-in a scenario starts, reads
    and stops. Its behaviour is rules.json (see fake_endpoint.py), which
    the methods below rewrite."""

    def __init__(self, host, port, directory="/var/lib/fake-endpoint"):
        self.host, self.port, self.dir = host, port, directory
        self.log, self.rules_file = f"{directory}/requests.jsonl", f"{directory}/rules.json"
        self.url = f"http://127.0.0.1:{port}"
        self.current = {}

    def start(self, answer="ok", **rules):
        script = (Path(__file__).resolve().parent / "fake_endpoint.py").read_bytes()
        self.host.run_test(f"mkdir -p {self.dir} && : > {self.log}")
        self.host.run_test(f"echo {base64.b64encode(script).decode()} | base64 -d > {self.dir}/fake_endpoint.py")
        self.rules(answer=answer, **rules)
        self.host.run_test(f"systemd-run --unit=fake-endpoint --collect python3 {self.dir}/fake_endpoint.py "
                           f"--port {self.port} --dir {self.dir}")
        assert wait_until(lambda: self.host.run(f"curl -s -X POST -d '{{}}' {self.url}/ping").rc == 0, 30)
        self.host.run_test(f": > {self.log}")
        return self

    def rules(self, **changes):
        """Merge changes into rules.json (a value of None removes the key)."""
        self.current.update(changes)
        self.current = {k: v for k, v in self.current.items() if v is not None}
        data = base64.b64encode(json.dumps(self.current).encode()).decode()
        self.host.run_test(f"echo {data} | base64 -d > {self.rules_file}.tmp && mv {self.rules_file}.tmp {self.rules_file}")

    def answer(self, text):
        """What every model call answers from now on ('down': HTTP 503)."""
        self.rules(answer=text)

    def requests(self, path_suffix=""):
        lines = self.host.file(self.log).content_string.splitlines()
        return [r for r in map(json.loads, lines) if r["path"].split("?")[0].endswith(path_suffix)]

    def stop(self):
        self.host.run_test("systemctl stop fake-endpoint")
