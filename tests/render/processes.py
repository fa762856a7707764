"""The process tree as /proc shows it, for tests that kill or count render processes."""

import os
from pathlib import Path


def process_parents() -> dict[int, int]:
    """pid → parent pid, for every process still listed."""
    parents = {}
    for entry in os.listdir("/proc"):
        try:
            stat = Path(f"/proc/{entry}/stat").read_text() if entry.isdigit() else ""
        except OSError:
            continue
        if stat:
            parents[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
    return parents
