import pytest
import torch

from rs_metapeft.peft import gamma_parameters
from rs_metapeft.tasks import MetaPEFTTask

from .factory import assert_same, fit, gamma_state, phi_state


def test_outer_step_changes_gamma_only_and_bit_identically(tiny_s2_root, tmp_path):
    task, _ = fit(tiny_s2_root, tmp_path)
    assert task.outer_steps >= 1
    model_before, opt_before = phi_state(task)
    gamma_before = gamma_state(task)
    task.outer_step()
    model_after, opt_after = phi_state(task)
    assert_same(model_before, model_after)
    assert opt_before
    assert_same(opt_before, opt_after)
    gamma_after = gamma_state(task)
    assert any(not torch.equal(gamma_before[k], gamma_after[k]) for k in gamma_before)


@pytest.fixture(scope="module")
def plain_two_steps(tiny_s2_root, tmp_path_factory):
    return fit(tiny_s2_root, tmp_path_factory.mktemp("plain"), max_steps=2,
               meta={"enabled": False})[0]


@pytest.mark.parametrize("meta", [
    {"hypergradient": "first_order"},
    {"hypergradient": "unrolled"},
    {"hypergradient": "unrolled", "hvp_batch_size": 2},
    {"hypergradient": "unrolled_k", "lookahead_steps": 2},
])
def test_a_training_step_with_an_outer_step_leaves_phi_as_the_plain_step(tiny_s2_root, tmp_path,
                                                                        plain_two_steps, meta):
    # Step 0 is warm-up, step 1 runs the outer step: phi and the optimiser must match a run
    # without meta bit for bit, and gamma must have moved.
    with_meta, _ = fit(tiny_s2_root, tmp_path, max_steps=2, meta=meta)
    plain = plain_two_steps
    assert with_meta.outer_steps == 1 and plain.outer_steps == 0
    model_a, opt_a = phi_state(with_meta)
    model_b, opt_b = phi_state(plain)
    assert_same(model_a, model_b)
    assert_same(opt_a, opt_b)
    assert any(not torch.all(g == 1) for g in gamma_state(with_meta).values())
    assert all(torch.all(g == 1) for g in gamma_state(plain).values())


def test_meta_off_leaves_gamma_at_one(plain_two_steps):
    task = plain_two_steps
    assert task.outer_steps == 0
    assert all(torch.all(m.modulation() == 1) for m in task.model.peft_modules)


def test_band_statistics_and_classes_travel_in_the_checkpoint(tiny_s2_root, tmp_path):
    task, trainer = fit(tiny_s2_root, tmp_path)
    path = tmp_path / "model.ckpt"
    trainer.save_checkpoint(path)
    ckpt = torch.load(path, weights_only=True)
    info = ckpt["rs_metapeft"]
    assert info["bands"] == task.model.bands and len(info["band_mean"]) == 13
    assert info["classes"][0] == "AnnualCrop" and sum(info["train_counts"]) > 0
    assert info["group_counts"] == task.group_counts and sum(task.group_counts) > 0
    assert info["seed"] == 0 and info["meta_split"]["val"]
    # The meta sampler's position is the datamodule's own state, which Lightning saves, and the
    # random-number states are the ExactResume callback's.
    assert ckpt["SyntheticEuroSATDataModule"]["meta_sampler"]["rng"]
    assert ckpt["callbacks"]["ExactResume"]["rng"]["torch"].numel()
    assert len(info["gamma_history"]) == task.outer_steps
    restored = MetaPEFTTask.load_from_checkpoint(path, weights_only=True)
    assert torch.equal(restored.model.normalizer.mean, task.model.normalizer.mean)
    assert restored.class_names == task.class_names
    assert restored.group_counts == task.group_counts
    assert restored.outer_steps == task.outer_steps
    assert gamma_parameters(restored.model)


@pytest.mark.parametrize("lookahead", ["train_step", "meta_train"])
def test_activation_checkpointing_trains_and_meta_steps_as_without(tiny_s2_root, tmp_path,
                                                                   lookahead):
    tasks = [fit(tiny_s2_root, tmp_path / str(c), activation_checkpointing=c,
                 meta={"lookahead": lookahead}, peft={"dropout": 0.0})[0] for c in (False, True)]
    assert tasks[1].model.backbone.grad_checkpointing  # still on after the outer steps
    assert tasks[1].outer_steps == tasks[0].outer_steps > 0
    plain, checkpointed = (t.model.state_dict() for t in tasks)
    for name, tensor in plain.items():
        torch.testing.assert_close(checkpointed[name], tensor, rtol=0, atol=1e-6, msg=name)


@pytest.mark.slow
def test_a_compiled_inner_step_trains_as_the_eager_one(tiny_s2_root, tmp_path):
    tasks = [fit(tiny_s2_root, tmp_path / str(c), compile_inner_step=c,
                 peft={"dropout": 0.0})[0] for c in (False, True)]
    assert "_compiled_model" in vars(tasks[1]) and tasks[1].outer_steps == tasks[0].outer_steps
    assert set(tasks[1].state_dict()) == set(tasks[0].state_dict())  # no compiled copy saved
    plain, compiled = (t.model.state_dict() for t in tasks)
    for name, tensor in plain.items():
        torch.testing.assert_close(compiled[name], tensor, rtol=1e-4, atol=1e-5, msg=name)
