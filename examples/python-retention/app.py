"""A retention policy for rcbackup, written in Python.

Keeps the newest `keep` backups of the series, and also every backup made on
the first day of a month (UTC) as a monthly archive; deletes the rest.

Build (from this folder):
    componentize-py -d ../../guest-sdk/wit -w retention-policy componentize app -o python_retention.wasm

Config:
    [policies.retention]
    module = "python_retention.wasm"
    config = { keep = 3 }
"""

import json
from datetime import datetime, timezone

from componentize_py_types import Err
from wit_world import exports
from wit_world.exports.retention import Decision
from wit_world.imports import host


class Retention(exports.Retention):
    def decide(self, series, now):
        config = json.loads(host.config())
        keep = config.get("keep", 10)
        if not isinstance(keep, int) or keep < 1:
            raise Err(f"keep must be a whole number of 1 or more, not {keep!r}")
        newest_first = sorted(series, key=lambda b: (b.created, b.name), reverse=True)
        decisions = []
        for i, backup in enumerate(newest_first):
            made = datetime.fromtimestamp(backup.created, tz=timezone.utc)
            if i < keep:
                decisions.append(Decision(backup.name, True, f"one of the newest {keep} (#{i + 1})"))
            elif made.day == 1:
                decisions.append(Decision(backup.name, True, f"monthly archive of {made:%Y-%m}"))
            else:
                decisions.append(Decision(backup.name, False, f"older than the newest {keep} (#{i + 1})"))
        host.log(host.Level.INFO, f"python retention: {len(series)} backups, keep {keep}")
        return decisions
