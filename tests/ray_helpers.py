"""Samplers for the Ray tests: one that stalls once, so a test can kill the Ray worker that runs it in the
middle of a chunk, and one whose answers are given.

Ray workers import them by dotted path (`ray_helpers:StallingSampler`; the tests put this folder on the
workers' PYTHONPATH), the way a user plugs their own sampler into a cluster run.
"""

from __future__ import annotations

import os
import time

from sgpo_curate.samplers import Samples, TransformersSampler


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


class ScriptedSampler:
    """A sampler whose k answers are given (the same for every query); `model` names a real model folder so
    the driver can count its parameters without loading it."""

    name = "scripted"
    version = "1"
    model_revision = None
    num_parameters = 0

    def __init__(self, model: str, answers: list[str]):
        self.model_name = model
        self.answers = tuple(answers)

    def sample(self, queries, config, seed):
        k = len(self.answers)
        return [Samples(texts=self.answers, completion_tokens=(1,) * k, prompt_tokens=1) for _ in queries]
