"""Offline stand-in for the get-pip.py script ansible-test downloads.

ansible-test sanity --requirements bootstraps pip in each of its virtual
environments with a script fetched from a host this network cannot reach;
it uses a cached copy when one exists. This file is installed as that
cached copy: it bootstraps pip from the interpreter's own ensurepip, then
lets that pip install the pinned versions ansible-test asked for.
"""

import ensurepip
import os
import subprocess
import sys

# get-pip.py options that plain `pip install` does not know.
GET_PIP_ONLY = {"--no-setuptools", "--no-wheel"}


def main():
    ensurepip.bootstrap(upgrade=True)
    env = dict(os.environ)
    # ensurepip points PIP_CONFIG_FILE at /dev/null, which would hide the
    # machine's index, proxy and CA settings from the install below.
    env.pop("PIP_CONFIG_FILE", None)
    args = [arg for arg in sys.argv[1:] if arg not in GET_PIP_ONLY]
    return subprocess.call([sys.executable, "-m", "pip", "install"] + args, env=env)


if __name__ == "__main__":
    sys.exit(main())
