"""Prints the release date the changelog already records for a version, or
today's date for a version it does not know yet.

antsibull-changelog stamps today's date on every `release`; passing this
date instead keeps `make changelog` and the staleness check in `make test`
independent of the day they run on."""

import datetime
import sys

import yaml


def main(version, path="changelogs/changelog.yaml"):
    with open(path, encoding="utf-8") as handle:
        releases = (yaml.safe_load(handle) or {}).get("releases") or {}
    date = (releases.get(version) or {}).get("release_date")
    print(date or datetime.date.today().isoformat())


if __name__ == "__main__":
    main(*sys.argv[1:])
