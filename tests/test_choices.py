"""Choices are Literal types; Python callers (no parser) get the same one check, check_choice."""

from typing import Literal

import pytest

from rs_metapeft.choices import check_choice
from rs_metapeft.data.sar import SARPreprocessing
from rs_metapeft.meta import MetaConfig
from rs_metapeft.peft import PeftConfig
from rs_metapeft.tasks.metapeft import GroupsConfig, OptimizerConfig


def test_check_choice_returns_the_value_or_lists_the_choices():
    kind = Literal["sgd", "adamw"]
    assert check_choice("sgd", kind, "model.optimizer.name") == "sgd"
    with pytest.raises(ValueError, match=r"^model.optimizer.name must be one of sgd, adamw, "
                                         r"got 'adam'$"):
        check_choice("adam", kind, "model.optimizer.name")


@pytest.mark.parametrize(("config", "field", "value"), [
    (OptimizerConfig, "name", "adam"),
    (OptimizerConfig, "schedule", "step"),
    (GroupsConfig, "rule", "median"),
    (MetaConfig, "optimizer", "rmsprop"),
    (MetaConfig, "lr_schedule", "linear"),
    (MetaConfig, "lookahead_rule", "adam"),
    (MetaConfig, "lookahead", "both"),
    (PeftConfig, "method", "prefix"),
    (PeftConfig, "gamma_shape", "row"),
    (SARPreprocessing, "input", "power"),
])
def test_settings_built_from_python_refuse_a_value_outside_their_choices(config, field, value):
    with pytest.raises(ValueError, match=rf"\.{field} must be one of .*got '{value}'"):
        config(**{field: value})
