"""A real X display for the desktop tests: Xvfb on a free display number, killed at the end."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass


@dataclass
class Display:
    name: str  # ":N"
    proc: subprocess.Popen[bytes]

    def kill(self) -> None:
        """End the X server the way a logout or a crash does: without asking anyone."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


def start_xvfb(size: str = "1280x1024x24") -> Display | None:
    """Xvfb picking its own display number (-displayfd); None when Xvfb is not installed."""
    exe = shutil.which("Xvfb")
    if exe is None:
        return None
    read_fd, write_fd = os.pipe()
    proc = subprocess.Popen([exe, "-displayfd", str(write_fd), "-screen", "0", size,
                             "-nolisten", "tcp"], pass_fds=(write_fd,),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(write_fd)
    with os.fdopen(read_fd) as fh:
        number = fh.readline().strip()
    if not number:
        proc.kill()
        raise RuntimeError("Xvfb did not report a display number")
    return Display(f":{number}", proc)
