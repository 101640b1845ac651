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

import numpy
import torch

from olmp.version import __version__


def describe_environment() -> dict[str, str | int]:
    """olmp, torch and numpy versions, torch's thread count, the machine and the vector
    instructions torch's CPU kernels use, for records (the same commands at the same thread
    count have made a 162x and a 105x run on two machines that both call themselves "AMD
    EPYC"; kernels and library versions are what can tell such machines apart)."""
    return {
        "olmp_version": __version__,
        "torch_version": torch.__version__,
        "numpy_version": numpy.__version__,
        "torch_threads": torch.get_num_threads(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
    }
