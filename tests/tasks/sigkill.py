"""A callback that SIGKILLs its own process, for resume tests through the real command line.

Recipes name it as ``tests.tasks.sigkill.KillAtStep`` (the test puts the repository on
``PYTHONPATH``).
"""

import os
import signal

import lightning as L


class KillAtStep(L.Callback):
    """Kill the process (no clean-up, no checkpoint) just before training step ``step``."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.global_step == self.step:
            os.kill(os.getpid(), signal.SIGKILL)
