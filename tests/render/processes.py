"""The process tree as /proc shows it, for tests that kill or count render processes."""

import os
from pathlib import Path


def process_status() -> dict[int, dict[str, str]]:
    """pid → the fields of `/proc/<pid>/status` (`PPid`, `State`, `SigBlk`...), for every
    process still listed."""
    found = {}
    for entry in os.listdir("/proc"):
        try:
            status = Path(f"/proc/{entry}/status").read_text() if entry.isdigit() else ""
        except OSError:
            continue
        if status:
            found[int(entry)] = dict(line.split(":\t", 1) for line in status.splitlines()
                                     if ":\t" in line)
    return found


def process_parents() -> dict[int, int]:
    """pid → parent pid."""
    return {pid: int(fields["PPid"]) for pid, fields in process_status().items()}


def descendants(roots: set[int], parents: dict[int, int]) -> set[int]:
    """`roots` and every process below them."""
    found = frontier = set(roots)
    while frontier:
        frontier = {pid for pid, ppid in parents.items() if ppid in frontier} - found
        found = found | frontier
    return found
