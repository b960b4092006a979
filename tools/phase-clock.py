"""Pass molecule's output through unchanged and write how long each of its
actions (create, converge, verify, ...) took to the file named first, one
"action seconds" line each, for the time table of make test."""
import re
import sys
import time

ACTION = re.compile(r"➜ (\w+): (Executing|Executed)")
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def main(path):
    started, done = {}, []
    for line in sys.stdin:
        sys.stdout.write(line)
        match = ACTION.search(ANSI.sub("", line))
        if not match:
            continue
        action, state = match.groups()
        if state == "Executing":
            started[action] = time.monotonic()
        elif action in started:
            done.append((action, time.monotonic() - started.pop(action)))
    # An action cut short by a failure still gets its time until the end.
    done += [(action, time.monotonic() - start) for action, start in started.items()]
    with open(path, "w", encoding="utf-8") as out:
        out.writelines(f"{action} {seconds:.0f}\n" for action, seconds in done)


if __name__ == "__main__":
    main(sys.argv[1])
