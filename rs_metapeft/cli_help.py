"""The short ``--help`` of ``fit``, ``validate``, ``test``, ``predict``: recipe-level options.

LightningCLI's own help lists every Trainer argument with Lightning's full description (some 860
lines). The short help is built from the same parser, so it cannot name an option that does not
exist: the recipe and run options, the trainer keys recipes set, every model key (the nested
``peft``, ``meta``, ``optimizer`` and ``groups`` sections one line each), the data module and the
checkpoint keys. ``--help-all`` prints LightningCLI's full help.
"""

from __future__ import annotations

import re
import shutil
import textwrap
import typing
from typing import Any

__all__ = [
    "DEMOS",
    "FULL_HELP_FLAG",
    "TRAINER_KEYS",
    "clean_help",
    "demo_help",
    "first_sentence",
    "short_help",
]

#: The flag that asks for LightningCLI's full help.
FULL_HELP_FLAG = "--help-all"

#: Trainer keys shown in the short help, with a plain description (Lightning's are long).
TRAINER_KEYS: dict[str, str] = {
    "max_epochs": "passes over the training split",
    "max_steps": "training steps; stops before max_epochs when reached (-1: no limit)",
    "accelerator": "cpu, gpu or auto",
    "devices": "how many devices (or which), e.g. 1, 2 or [0, 1]",
    "precision": "32-true, bf16-mixed, 16-mixed ...",
    "default_root_dir": "folder of the runs: ROOT/lightning_logs/version_N holds the "
                        "checkpoints, logs and report",
    "log_every_n_steps": "log the training loss every N steps (the report's training curves)",
    "limit_train_batches": "train on this many batches per epoch (or this fraction)",
}

#: Option arguments shown for the recipe-and-run options (LightningCLI's defaults are unclear).
_RUN_OPTIONS: tuple[tuple[str, str, str], ...] = (
    ("-c, --config RECIPE", "config",
     "a recipe file, or a shipped recipe's name (rs-metapeft recipes list); given twice, the "
     "second overrides the first"),
    ("--print_config", "print_config",
     "print the whole configuration (recipe, overrides, defaults) and exit"),
    ("--ckpt_path PATH", "ckpt_path",
     "a checkpoint; `last`: the newest last.ckpt under the run folder (fit resumes it exactly)"),
    ("--overwrite true", "overwrite",
     "replace the report of an earlier run in the report folder (refused otherwise)"),
    ("--seed_everything N", "seed_everything", "random seed of the run"),
)

_ROLE = re.compile(r":(?:func|class|meth|mod|attr|data|obj|exc):`~?([^`]+)`")


def clean_help(text: str | None) -> str:
    """A parser help text without reStructuredText markup, on one line.

    Example:
        >>> clean_help("``linear`` or ``cosine`` (see :mod:`rs_metapeft.models.head`).")
        'linear or cosine (see rs_metapeft.models.head).'
    """
    text = _ROLE.sub(lambda m: m.group(1), text or "")
    return " ".join(text.replace("``", "").split())


def _choices(action: Any) -> list[str] | None:
    hint = getattr(action, "_typehint", None)
    if typing.get_origin(hint) is typing.Literal:
        return [str(c) for c in typing.get_args(hint)]
    if hint is bool:
        return ["true", "false"]
    return None


def _default(action: Any) -> str | None:
    value = action.default
    if value is None or isinstance(value, str) and value == "==SUPPRESS==":
        return None
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list):
        return "[" + ", ".join(map(str, value)) + "]"
    return str(value)


def _row(option: str, text: str, width: int, column: int) -> list[str]:
    """An option and its description, wrapped under the description column."""
    first = f"  {option}"
    lines = textwrap.wrap(text, width - column) or [""]
    if len(first) + 2 > column:
        out = [first]
    else:
        out = [f"{first:<{column}}{lines.pop(0)}"]
    return out + [" " * column + line for line in lines]


_SENTENCE_END = re.compile(r"(?<!e\.g)(?<!i\.e)\.\s+(?=[A-Z])")


def first_sentence(text: str) -> str:
    """The first sentence of a help text (the rest is in ``--help-all``).

    Example:
        >>> first_sentence("recompute activations (e.g. for ViT-B). Gradients are unchanged.")
        'recompute activations (e.g. for ViT-B).'
    """
    match = _SENTENCE_END.search(text)
    return text[:match.start() + 1] if match else text


def _action_text(action: Any) -> str:
    text = first_sentence(clean_help(action.help))
    choices = _choices(action)
    if choices and getattr(action, "_typehint", None) is not bool and not all(
            c in text for c in choices):
        text += f" One of: {', '.join(choices)}."
    default = _default(action)
    if default is not None:
        text += f" (default: {default})"
    return text


def short_help(parser: Any, subcommand: str, description: str) -> str:
    """The short help of one LightningCLI subcommand, read from its parser.

    Args:
        parser: LightningCLI's top-level parser.
        subcommand: ``fit``, ``validate``, ``test`` or ``predict``.
        description: what the subcommand does, with its example.
    """
    sub = parser._subcommands_action._name_parser_map[subcommand]
    actions = {a.dest: a for a in sub._actions}
    width = min(max(shutil.get_terminal_size((100, 24)).columns, 80), 110)
    column = 34
    out = [f"usage: rs-metapeft {subcommand} --config RECIPE [--KEY VALUE ...]", "",
           _wrap_paragraphs(description, width), "", "recipe and run:"]
    for option, dest, text in _RUN_OPTIONS:
        if dest in actions:
            default = _default(actions[dest]) if dest == "seed_everything" else None
            out += _row(option, text + (f" (default: {default})" if default else ""),
                        width, column)

    trainer = [k for k in TRAINER_KEYS if f"trainer.{k}" in actions]
    n_trainer = sum(1 for d in actions if d.startswith("trainer.") and not d.endswith(".help"))
    out += ["", f"trainer (--trainer.KEY; {len(trainer)} of {n_trainer} keys, "
                f"{FULL_HELP_FLAG} lists them all):"]
    for key in trainer:
        out += _row(f"--trainer.{key}", TRAINER_KEYS[key], width, column)

    out += ["", "model (--model.KEY; every key):"]
    sections: dict[str, list[str]] = {}
    for dest, action in actions.items():
        if not dest.startswith("model.") or not action.option_strings[0].startswith("--"):
            continue
        parts = dest.split(".")
        if type(action).__name__ == "_ActionConfigLoad":
            sections[dest] = []
        elif len(parts) == 3 and ".".join(parts[:2]) in sections:
            sections[".".join(parts[:2])].append(parts[2])
        elif len(parts) == 2:
            out += _row(f"--{dest}", _action_text(action), width, column)
    for section, keys in sections.items():
        title = ""
        for group in sub._action_groups if keys else []:
            if any(a.dest == f"{section}.{keys[0]}" for a in group._group_actions):
                title = clean_help(group.title)
        out += _row(f"--{section}.KEY", f"{title}: {', '.join(keys)}" if title
                    else ", ".join(keys), width, column)

    if "data" in actions:
        from .cli import data_modules

        names = ", ".join(m.rsplit(".", 1)[-1] for m in data_modules())
        out += ["", "data (--data.KEY; set by the recipe):"]
        out += _row("--data.class_path CLASS", f"the data module: {names}", width, column)
        out += _row("--data.init_args.KEY", "its options (root, bands, batch_size ...); "
                    f"rs-metapeft {subcommand} --data.help CLASS lists them", width, column)

    checkpoint = [d for d in actions if d.startswith("checkpoint.")]
    if checkpoint:
        out += ["", "checkpoints (--checkpoint.KEY):"]
        for dest in checkpoint:
            out += _row(f"--{dest}", _action_text(actions[dest]), width, column)

    out += ["", "more:",
            f"  rs-metapeft {subcommand} {FULL_HELP_FLAG}   every option, with Lightning's own "
            "descriptions",
            f"  rs-metapeft {subcommand} --config RECIPE --print_config   every value a recipe "
            "sets"]
    return "\n".join(out)


#: The demos of ``rs-metapeft demo``: name -> recipe.
DEMOS = {"multispectral": "demo", "sar": "demo_sar", "multilabel": "demo_multilabel"}


def demo_help(description: str) -> str:
    """The help of ``rs-metapeft demo``: its demos, where their data and runs go, its options.

    Read from the demo recipes, so the folders named are the ones the run uses.
    """
    from .api import load_recipe

    width = min(max(shutil.get_terminal_size((100, 24)).columns, 80), 110)
    column = 34
    out = [f"usage: rs-metapeft demo [{'|'.join(DEMOS)}] [fit options ...]", "",
           _wrap_paragraphs(description, width), "", "demos:"]
    for i, (name, recipe_name) in enumerate(DEMOS.items()):
        recipe = load_recipe(recipe_name)
        init = (recipe.get("data") or {}).get("init_args") or {}
        bands = init.get("bands")
        trainer = recipe.get("trainer") or {}
        # A list of band names, or a name of the data module's own band sets ("all", "s2").
        count = (f"{len(bands)} bands" if isinstance(bands, list)
                 else "all bands" if bands in (None, "all") else f"bands {bands}")
        multilabel = (f" multi-label, {init.get('num_classes', '?')} labels;"
                      if _is_multilabel(recipe) else "")
        text = (f"recipe {recipe_name}{' (the default)' if i == 0 else ''}: "
                f"{count};{multilabel} synthetic data generated in "
                f"{init.get('root', '?')} on first use; runs in "
                f"{trainer.get('default_root_dir', '.')}/lightning_logs/version_N; "
                f"{trainer.get('max_epochs', '?')} epochs")
        out += _row(name, text, width, column)
    out += ["", "options (any of rs-metapeft fit's; rs-metapeft fit --help lists them):"]
    for option, text in (
            ("--trainer.max_epochs N", "train for N epochs instead"),
            ("--trainer.accelerator cpu", "stay on the CPU (default: auto: a GPU if any)"),
            ("--data.init_args.root DIR", "generate (or find) the synthetic data in DIR"),
            ("--trainer.default_root_dir DIR", "write the run (checkpoints, logs, report) "
                                               "under DIR"),
            ("--overwrite true", "replace the report of an earlier demo run")):
        out += _row(option, text, width, column)
    return "\n".join(out)


def _is_multilabel(recipe: dict) -> bool:
    """Whether a recipe's data module gives multi-label samples (its ``multilabel``)."""
    import importlib

    module, _, name = str((recipe.get("data") or {}).get("class_path", "")).rpartition(".")
    try:
        return bool(getattr(getattr(importlib.import_module(module), name), "multilabel", False))
    except (ImportError, AttributeError, ValueError):
        return False


def _wrap_paragraphs(text: str, width: int) -> str:
    """Wrap the prose lines of a description; indented lines (examples) stay as they are."""
    return "\n".join(line if line.startswith(" ") or not line else textwrap.fill(line, width)
                     for line in text.splitlines())
