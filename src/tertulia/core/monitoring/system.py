"""The machine a process runs on, through psutil: CPU, memory and disk use, in percent."""

from dataclasses import dataclass
from pathlib import Path

import psutil


@dataclass(frozen=True)
class MachineUse:
    cpu: float
    memory: float
    disk: float


class SystemLoad:
    """CPU use is a rate: psutil measures it between two calls. The monitoring beat samples it
    every few seconds, so the figure is the CPU use of the last beat, not of the moment (which
    would be 0 or 100) nor since the last time someone asked."""

    def __init__(self) -> None:
        psutil.cpu_percent(interval=None)  # the first call only starts the measure
        self._cpu: float | None = None

    def sample(self) -> None:
        self._cpu = psutil.cpu_percent(interval=None)

    def now(self, disk_path: Path) -> MachineUse:
        """`disk_path`: a path on the disk to report (where the data lives)."""
        if self._cpu is None:
            self.sample()
        assert self._cpu is not None
        return MachineUse(
            cpu=round(self._cpu, 1),
            memory=round(psutil.virtual_memory().percent, 1),
            disk=round(psutil.disk_usage(str(_existing(disk_path))).percent, 1),
        )


def _existing(path: Path) -> Path:
    """The path, or its nearest existing parent (a database folder not made yet)."""
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return Path("/")
