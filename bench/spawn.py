"""Run one command; write its wall time, peak RSS and exit code as JSON to a file.

    python -S bench/spawn.py RESULT.json CMD [ARG...]

The benchmark harness starts commands through this small process because a child's peak RSS
(``ru_maxrss``) counts the memory of the process it was forked from, up to its ``exec``: a
command forked straight from a harness holding a 10,000-manifest catalogue would report the
harness's size. Forked from here, the floor is this script's few megabytes.
"""

import json
import os
import subprocess
import sys
import time


def main() -> int:
    result, cmd = sys.argv[1], sys.argv[2:]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    proc.returncode = rc = os.waitstatus_to_exitcode(status)
    with open(result, "w") as fh:
        json.dump({"seconds": seconds, "rss_kb": usage.ru_maxrss, "rc": rc}, fh)
    return 0


if __name__ == "__main__":
    sys.exit(main())
