"""The ``rs-metapeft`` command line, on LightningCLI / jsonargparse conventions.

``rs-metapeft fit --config RECIPE`` trains, then tests and writes the tail-class report;
``validate``, ``test`` and ``predict`` are LightningCLI's; ``rs-metapeft demo`` runs the built-in
offline demo recipe (extra arguments are passed on, e.g. ``--trainer.max_steps=20``).
"""

from __future__ import annotations

import sys
from lightning.pytorch.cli import LightningCLI

from .data.datamodule import LongTailDataModule
from .recipes import recipe_path
from .tasks import MetaPEFTTask

__all__ = ["RSMetaPEFTCLI", "main"]


class RSMetaPEFTCLI(LightningCLI):
    """LightningCLI with bands and class count linked from the data to the model."""

    def add_arguments_to_parser(self, parser) -> None:  # noqa: D102 - LightningCLI hook
        parser.link_arguments("data.bands", "model.bands", apply_on="instantiate")
        parser.link_arguments("data.num_classes", "model.num_classes", apply_on="instantiate")

    def after_fit(self) -> None:
        """Test the trained model and write the tail-class report (skipped if fit was stopped)."""
        if self.trainer.interrupted:
            return
        self.trainer.test(self.model, datamodule=self.datamodule, verbose=False)


def build_cli(args: list[str] | None = None, run: bool = True) -> RSMetaPEFTCLI:
    """Build (and by default run) the CLI on ``args``; shipped recipe names work for --config."""
    args = list(sys.argv[1:] if args is None else args)
    for i, arg in enumerate(args[:-1]):
        if arg in ("--config", "-c"):
            args[i + 1] = str(recipe_path(args[i + 1]))
    return RSMetaPEFTCLI(
        MetaPEFTTask,
        LongTailDataModule,
        subclass_mode_data=True,
        seed_everything_default=0,
        save_config_kwargs={"overwrite": True},
        args=args,
        run=run,
    )


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``rs-metapeft``; returns the process exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "export":
        from .export.command import main as export_main

        return export_main(argv[1:])
    if argv and argv[0] == "demo":
        argv = ["fit", "--config", str(recipe_path("demo"))] + argv[1:]
    build_cli(argv)
    return 0


if __name__ == "__main__":  # pragma: no cover
    main()
