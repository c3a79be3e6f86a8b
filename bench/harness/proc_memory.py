"""Memory of one process from /proc: RSS and PSS (proportional set size) in MiB.

PSS divides each shared page by the number of processes mapping it, so the PSS of forked
instances sums to their real cost, while their RSS counts the zygote's shared pages again in
every child. Source: https://docs.kernel.org/filesystems/proc.html (smaps_rollup).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Memory:
    rss_mib: float
    pss_mib: float


def read_memory(pid: int) -> Memory:
    """RSS and PSS of `pid`. Raises OSError if the process is gone."""
    fields: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[2] == "kB":
            fields[parts[0].rstrip(":")] = int(parts[1])
    return Memory(rss_mib=fields["Rss"] / 1024, pss_mib=fields["Pss"] / 1024)
