"""A sampler that stalls once, so a test can kill the Ray worker that runs it in the middle of a chunk.

Ray workers import it by its dotted path `ray_helpers:StallingSampler` (the tests put this folder on
the workers' PYTHONPATH), the way a user plugs their own sampler into a cluster run.
"""

from __future__ import annotations

import os
import time

from sgpo_curate.samplers import TransformersSampler


class StallingSampler(TransformersSampler):
    """The transformers sampler, except that the first call that meets query `stall_on` writes this
    process's pid to `pid_file` and sleeps there until it is killed. Later calls (the restarted worker's
    retry included) find the file and sample as usual.
    """

    def __init__(self, model: str, pid_file: str, stall_on: str):
        super().__init__(model, device="cpu")
        self.pid_file = pid_file
        self.stall_on = stall_on

    def sample(self, queries, config, seed):
        if any(q.id == self.stall_on for q in queries) and not os.path.exists(self.pid_file):
            tmp = f"{self.pid_file}.tmp"
            with open(tmp, "w") as handle:
                handle.write(str(os.getpid()))
            os.replace(tmp, self.pid_file)
            time.sleep(600)
        return super().sample(queries, config, seed)
