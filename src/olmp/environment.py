"""What a result depends on besides its inputs and seeds: versions, machine, threads.

Training and evaluation are deterministic for a given seed only at a fixed number of
torch threads: parallel float sums add up in an order that depends on it, so two runs
with different thread counts drift apart in the last bits, and a search that follows
those weights can end elsewhere. Checkpoints and run records therefore say how many
threads made them.
"""

from __future__ import annotations

import os
import platform

import torch

from olmp.version import __version__


def describe_environment() -> dict[str, str | int]:
    """olmp and torch versions, torch's thread count and the machine, for records."""
    return {
        "olmp_version": __version__,
        "torch_version": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
    }
