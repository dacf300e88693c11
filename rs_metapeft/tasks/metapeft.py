"""The MetaPEFT classification task (a LightningModule with manual optimisation).

Inner steps train PEFT weights, stem and head with gamma fixed; every ``meta.every_n_steps``
steps (after ``meta.warmup_steps``) an outer step updates gamma only. By default the inner step
itself is the look-ahead (``phi' = phi - lr * g`` with the gradient the step computes anyway), so
an outer step costs one forward/backward on a meta-val batch, plus a Hessian-vector product when
unrolled; ``meta.lookahead: meta_train`` (and ``unrolled_k``) take separate look-ahead steps on
meta-train batches instead. Either way the PEFT weights, head, stem and optimiser state after
the step are exactly what the plain inner step leaves. With ``meta.enabled: false`` (or no PEFT
modules: a linear probe, or full fine-tuning) the same task is the fixed-hyperparameter baseline.

With ``multilabel`` (taken from the datamodule's ``multilabel`` on the command line) a sample
carries a multi-hot label: the head's logits become per-label sigmoid scores, the losses are the
multi-label ones of :mod:`rs_metapeft.tasks.losses`, per-label thresholds are chosen on the
validation split when fit ends (:mod:`rs_metapeft.tasks.thresholds`) and the test report is the
label-tail report of :mod:`rs_metapeft.reporting.multilabel`.
"""

from __future__ import annotations

import copy
import inspect
import math
from dataclasses import asdict, dataclass
from typing import Any, Literal

import lightning as L
import torch
from lightning.pytorch.utilities import rank_zero_warn
from torch.utils.data import DataLoader
from torchmetrics.aggregation import CatMetric
from torchmetrics.classification import (
    MulticlassAccuracy,
    MulticlassConfusionMatrix,
    MultilabelAveragePrecision,
)

from ..bands import check_compatible
from ..checkpointing import METADATA_KEY, ExactResume, restore_task_metadata, task_metadata
from ..choices import check_choice
from ..data.longtail import GroupsRule
from ..meta import (
    Hypergradient,
    MetaConfig,
    build_meta_optimizer,
    lookahead_hypergradient,
    rule_from_optimizer,
    step_hypergradient,
)
from ..meta.optim import meta_lr_factor
from ..models import SpectralViTClassifier, init_head_from_class_means
from ..models.classifier import Normalization
from ..models.head import HeadKind, init_head_bias_from_frequencies, label_scores
from ..models.stem import StemKind
from ..models.torchgeo_weights import weights_settings
from ..peft import (
    PeftConfig,
    clamp_modulators,
    gamma_map,
    gamma_parameters,
    split_parameters,
)
from ..reporting.callbacks import GammaPlots, TailReport
from .losses import LossKind, check_loss_for, classification_loss, multilabel_loss
from .thresholds import DEFAULT_THRESHOLD, ValidationThresholds

__all__ = ["GroupsConfig", "MetaPEFTTask", "OptimizerConfig"]


#: The inner optimiser (``model.optimizer.name``) and its schedule (``model.optimizer.schedule``).
InnerOptimizer = Literal["sgd", "adamw"]
InnerSchedule = Literal["cosine", "constant"]
#: How the head starts (``model.head_init``).
HeadInit = Literal["random", "class_mean"]


@dataclass
class OptimizerConfig:
    """The inner optimiser and its schedule.

    Attributes:
        name: ``sgd`` or ``adamw``.
        lr: peak learning rate.
        momentum: SGD momentum.
        weight_decay: weight decay.
        schedule: ``cosine`` (one cosine over the whole run, never restarted) or ``constant``.
        warmup_steps: linear warm-up steps.

    """

    name: InnerOptimizer = "adamw"
    lr: float = 1e-3
    momentum: float = 0.9
    weight_decay: float = 1e-4
    schedule: InnerSchedule = "cosine"
    warmup_steps: int = 0

    def __post_init__(self) -> None:
        # The command line checks these already; Python callers (dicts) come through here.
        check_choice(self.name, InnerOptimizer, "model.optimizer.name")
        check_choice(self.schedule, InnerSchedule, "model.optimizer.schedule")

    def build(self, params: list[torch.Tensor]) -> torch.optim.Optimizer:
        """The inner optimiser over ``params``.

        AdamW runs fused (one kernel over every tensor) on the CPU and on CUDA: with a few
        hundred small PEFT tensors, the default implementation's per-tensor loop costs more
        than the update itself. The update is the same AdamW, moments and all, which the meta
        step's look-ahead reproduces (:mod:`rs_metapeft.meta.update_rules`).
        """
        if self.name == "sgd":
            return torch.optim.SGD(params, lr=self.lr, momentum=self.momentum,
                                   weight_decay=self.weight_decay)
        fused = all(p.device.type in ("cpu", "cuda") and p.is_floating_point() for p in params)
        return torch.optim.AdamW(params, lr=self.lr, weight_decay=self.weight_decay,
                                 fused=fused or None)


@dataclass
class GroupsConfig:
    """How classes are grouped into many / medium / few for reporting.

    Attributes:
        rule: ``auto``, ``thresholds`` or ``quantile``.
        many_threshold: classes with more training images are "many".
        few_threshold: classes with fewer training images are "few".

    """

    rule: GroupsRule = "auto"
    many_threshold: int = 100
    few_threshold: int = 20

    def __post_init__(self) -> None:
        check_choice(self.rule, GroupsRule, "model.groups.rule")


class MetaPEFTTask(L.LightningModule):
    """Fine-tune an RGB-pretrained ViT on any band set with modulated PEFT and MetaPEFT.

    Args:
        bands: input band names (linked from the datamodule in recipes).
        num_classes: number of classes (linked from the datamodule in recipes).
        backbone: timm model name (TorchGeo weights put their own architecture in its place).
        weights: ``null`` (random init), a local weights file, ``hub``, ``hf-hub:<repo>`` or
            TorchGeo weights, ``torchgeo:<Enum>.<MEMBER>`` (``rs-metapeft backbones`` lists them).
        img_size: input size.
        patch_size: ViT patch size (``null``: the backbone's own, e.g. 16 for TorchGeo ViT-S/16).
        head: ``linear`` or ``cosine``.
        backbone_kwargs: more timm model arguments (e.g. ``{depth: 2}``, ``{drop_path_rate: 0.1}``).
        peft: PEFT positions, layers and sizes (``positions: []`` is a linear probe).
        meta: outer-step settings (``enabled: false`` is the fixed-gamma baseline).
        optimizer: inner optimiser.
        loss: ``ce``, ``logit_adjusted`` (cross-entropy with ``tau * log prior`` added to the
            training logits), ``balanced_softmax`` or ``focal``; multi-label: ``bce``,
            ``asymmetric`` or ``prior_bce`` (see :mod:`rs_metapeft.tasks.losses`).
        logit_adjust_tau: tau of the logit-adjusted and prior-adjusted losses.
        label_smoothing: label smoothing of the cross-entropy losses.
        focal_gamma: focusing exponent of the focal loss.
        groups: grouping of classes in the report.
        report_dir: where ``report.json`` / ``report.md`` go (default: the run's log folder).
        stem: spectral stem: ``rgb_select``, ``band_mix``, ``patch_expand``, ``wavelength_hyper``.
        head_scale: logit scale of the cosine head.
        head_init: ``random`` or ``class_mean`` (head from class-mean features at fit start).
        activation_checkpointing: recompute each transformer block's activations during
            backward instead of storing them (less memory, about one more forward of compute);
            for ViT-B/L on a GPU. Gradients and hypergradients are unchanged.
        compile_inner_step: run the inner training step's forward (and so its backward)
            through ``torch.compile``; the meta step's hypergradients stay eager (they call the
            model functionally, with double backward). The first steps pay the compilation.
        custom_bands: the data's own band declarations (linked from ``data.custom_bands`` in
            recipes; see :func:`~rs_metapeft.bands.declare_bands`), recorded in checkpoints.
        backbone_bands: the bands the backbone takes (``null``: R, G, B; TorchGeo weights fill
            in theirs); the stem maps the data's bands onto them.
        normalization: ``pretrained``: standardise each band, then give it the per-band mean
            and std of the backbone's pretraining inputs where the weights record them
            (TorchGeo's SSL4EO-S12 Sentinel-2 / Sentinel-1 weights); ``data``: standardise only.
        multilabel: samples carry multi-hot labels (linked from the datamodule's
            ``multilabel`` in recipes; recorded in the checkpoint).
        asl_gamma_pos: focusing exponent of the positives of the ``asymmetric`` loss.
        asl_gamma_neg: focusing exponent of the negatives of the ``asymmetric`` loss.
        asl_clip: probability shift of the negatives of the ``asymmetric`` loss.
    """

    def __init__(
        self,
        bands: list[str],
        num_classes: int,
        backbone: str = "vit_tiny_patch16_224",
        weights: str | None = None,
        img_size: int = 64,
        patch_size: int | None = 8,
        head: HeadKind = "linear",
        backbone_kwargs: dict | None = None,
        peft: PeftConfig = PeftConfig(),  # noqa: B008 - copied below
        meta: MetaConfig = MetaConfig(),  # noqa: B008 - copied below
        optimizer: OptimizerConfig = OptimizerConfig(),  # noqa: B008 - copied below
        loss: LossKind = "ce",
        logit_adjust_tau: float = 1.0,
        label_smoothing: float = 0.0,
        focal_gamma: float = 2.0,
        groups: GroupsConfig = GroupsConfig(),  # noqa: B008 - copied below
        report_dir: str | None = None,
        stem: StemKind = "band_mix",
        head_scale: float = 25.0,
        head_init: HeadInit = "random",
        activation_checkpointing: bool = False,
        compile_inner_step: bool = False,
        custom_bands: list[dict[str, Any]] | None = None,
        backbone_bands: list[str] | None = None,
        normalization: Normalization = "pretrained",
        multilabel: bool = False,
        asl_gamma_pos: float = 0.0,
        asl_gamma_neg: float = 4.0,
        asl_clip: float = 0.05,
    ) -> None:
        super().__init__()
        # TorchGeo weights fix the architecture (and patch size and bands, unless given): the
        # hyperparameters record what was built, so a checkpoint rebuilds without the weights.
        backbone, patch_size, backbone_bands, weights_notes = weights_settings(
            weights, backbone, patch_size, backbone_bands)
        peft, meta, optimizer, groups = (
            _config(peft, PeftConfig), _config(meta, MetaConfig),
            _config(optimizer, OptimizerConfig), _config(groups, GroupsConfig),
        )
        # The command line checks the choices already; the model checks head and stem.
        check_choice(loss, LossKind, "model.loss")
        check_loss_for(loss, multilabel)
        check_choice(head_init, HeadInit, "model.head_init")
        # Every argument by name (the signature is their one list); settings as plain dicts, so
        # that checkpoints load with weights_only=True.
        given = locals()
        self.save_hyperparameters({
            **{name: given[name] for name in list(inspect.signature(MetaPEFTTask).parameters)},
            "bands": list(bands), "peft": asdict(peft), "meta": asdict(meta),
            "optimizer": asdict(optimizer), "groups": asdict(groups),
        })
        self.compile_inner_step = compile_inner_step
        self.automatic_optimization = False
        self.peft_config, self.meta_config = peft, meta
        self.optim_config, self.groups_config = optimizer, groups
        self.loss_kind, self.tau = loss, logit_adjust_tau
        self.label_smoothing, self.focal_gamma = label_smoothing, focal_gamma
        self.head_init = head_init
        self.multilabel = bool(multilabel)
        self.asl = {"gamma_pos": asl_gamma_pos, "gamma_neg": asl_gamma_neg, "clip": asl_clip}
        self.report_dir = report_dir
        self.model = SpectralViTClassifier.from_config(self.hparams, peft=peft)
        self.weights_notes = weights_notes
        # Recompute each block's activations in backward instead of keeping them: memory for
        # compute, for large backbones (timm's non-reentrant checkpointing; the hypergradients
        # switch it off for their own, functional, passes).
        self.model.backbone.set_grad_checkpointing(activation_checkpointing)
        # Single-label: log class priors; multi-label: log-odds of the label frequencies.
        self.register_buffer("log_prior", torch.zeros(num_classes))
        #: Training samples (multi-label: the denominator of the label frequencies).
        self.train_samples: int | None = None
        if self.multilabel:  # only then, so that single-label checkpoints keep their keys
            #: Per-label decision thresholds, chosen on the validation split when fit ends.
            self.register_buffer("thresholds", torch.full((num_classes,), DEFAULT_THRESHOLD))
            #: How the thresholds were chosen (for the report).
            self.thresholds_source = "default"
        self.class_names: list[str] = [str(i) for i in range(num_classes)]
        self.train_counts: list[int] = [0] * num_classes
        #: The counts that decide the report's groups (the datamodule's ``group_counts``: the
        #: training split before a meta holdout; ``train_counts`` where it has none).
        self.group_counts: list[int] = [0] * num_classes
        #: The training data's CRS and nodata value (checkpoint metadata; used at prediction).
        self.data_info: dict[str, Any] = {}
        #: What this fit did differently from what the recipe asked (top of the report).
        self.run_warnings: list[str] = []
        self.skipped_outer_steps = 0
        self.outer_steps = 0
        self.last_report: dict | None = None
        self._meta_iters: dict[str, Any] = {}
        #: (global step, gamma map) after every outer step, for the gamma-over-time plot.
        self.gamma_history: list[tuple[int, dict[int, dict[str, float]]]] = []
        if self.multilabel:
            self.val_map = MultilabelAveragePrecision(num_classes, average="macro")
            # Scores and labels of the test split (the label-tail report ranks them per label).
            self.test_scores, self.test_targets = CatMetric(), CatMetric()
        else:
            self.val_acc = MulticlassAccuracy(num_classes, average="micro")
            self.val_macro_acc = MulticlassAccuracy(num_classes, average="macro")
            self.test_confmat = MulticlassConfusionMatrix(num_classes)

    # -- data wiring -------------------------------------------------------------------------
    def setup(self, stage: str) -> None:
        """Take band statistics, class names and counts from the datamodule; check they fit."""
        dm = getattr(self.trainer, "datamodule", None) if self._trainer is not None else None
        if dm is None:
            return
        check_compatible(self.model.bands, dm.bands, where="the model",
                         fix="use the same data.bands the model was trained with")
        if bool(getattr(dm, "multilabel", False)) != self.multilabel:
            kinds = ("single-label", "multi-label")
            raise ValueError(
                f"the data ({type(dm).__name__}) are {kinds[bool(dm.multilabel)]} but the model "
                f"is {kinds[self.multilabel]}; set model.multilabel: "
                f"{str(bool(dm.multilabel)).lower()} (recipes link it from the data)"
            )
        if stage == "fit":
            stats = dm.band_stats
            self.model.normalizer.set_statistics(stats.mean, stats.std)
            self.train_counts = list(dm.train_counts)
            self.group_counts = list(getattr(dm, "group_counts", None) or dm.train_counts)
            self.data_info = dm.data_description() if hasattr(dm, "data_description") else {}
            self.run_warnings = list(getattr(dm, "run_warnings", []))
            for note in self.weights_notes:
                self._warn_run(note)
            counts = torch.tensor(self.train_counts, dtype=torch.float)
            if self.multilabel:
                self.train_samples = int(getattr(dm, "train_samples", len(dm.train_dataset)))
                f = (counts / max(self.train_samples, 1)).clamp(1e-6, 1 - 1e-6)
                self.log_prior.copy_(f.log() - (-f).log1p())
            else:
                self.log_prior.copy_((counts / counts.sum()).log())
        if dm.class_names:
            changed = len(dm.class_names) != len(self.class_names)
            if stage != "fit" and any(self.train_counts) and changed:
                raise ValueError(f"classes differ: model {self.class_names}, data {dm.class_names}")
            self.class_names = list(dm.class_names)

    def _require_statistics(self) -> None:
        # Checked when evaluation starts, not in setup: `rs-metapeft test --ckpt_path` has
        # Lightning load the checkpoint (and its band statistics) only after setup.
        if not bool(self.model.normalizer.fitted):
            raise ValueError(
                "this model has no band statistics: train it first (fit) or load a checkpoint"
            )

    def on_validation_start(self) -> None:
        """Refuse a model without band statistics."""
        self._require_statistics()

    def on_test_start(self) -> None:
        """Refuse a model without band statistics."""
        self._require_statistics()

    def on_predict_start(self) -> None:
        """Refuse a model without band statistics."""
        self._require_statistics()

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Make checkpoints self-describing and resumable (see :mod:`rs_metapeft.checkpointing`)."""
        checkpoint[METADATA_KEY] = task_metadata(self)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Refuse a checkpoint made for other bands; restore what :meth:`on_save_checkpoint` saved.

        Lightning calls this before it loads the weights, so resuming or testing on data with
        other bands (even as many, in another order) is refused with the difference named.

        Random-number states travel in :class:`~rs_metapeft.checkpointing.ExactResume`'s state,
        the meta sampler's in the datamodule's own ``state_dict``.
        """
        restore_task_metadata(self, checkpoint.get(METADATA_KEY, {}))

    def _datamodule(self):
        return getattr(self._trainer, "datamodule", None) if self._trainer is not None else None

    def configure_callbacks(self) -> list[L.Callback]:
        """Exact resume, the test report, the gamma plots (and multi-label thresholds).

        Those the trainer holds already (``trainer.test`` after ``fit``) are not added again,
        so Lightning has nothing to replace (and nothing to announce).
        """
        present = {type(c) for c in self._trainer.callbacks} if self._trainer is not None else set()
        callbacks = [ExactResume(), TailReport(), GammaPlots()]
        if self.multilabel:
            callbacks.append(ValidationThresholds())
        return [c for c in callbacks if type(c) not in present]

    def on_fit_start(self) -> None:
        """Class-mean head initialisation (fresh runs only, before any step).

        A fresh multi-label linear head with a random start and a loss without the prior
        (``bce``, ``asymmetric``) starts at the labels' training frequencies instead
        (:func:`~rs_metapeft.models.head.init_head_bias_from_frequencies`); ``prior_bce``
        adds the prior in the loss, so its head starts at zero bias.
        """
        # Not global_step: Lightning restores the loops only after this hook.
        if self.trainer.ckpt_path is not None:
            return
        if self.head_init == "class_mean":
            self.init_head_from_class_means()
        elif self.multilabel and self.loss_kind != "prior_bce":
            init_head_bias_from_frequencies(self.model.head, torch.sigmoid(self.log_prior))

    def init_head_from_class_means(self) -> None:
        """Set the head's class rows to the normalised class-mean features of the training set.

        Uses an unshuffled, unaugmented pass over the training split, so the training loader's
        (resumable) state is not touched.
        """
        dm = self._datamodule()
        if dm is None or getattr(dm, "train_dataset", None) is None:
            raise RuntimeError("model.head_init: class_mean needs the training data (fit)")
        if getattr(self.model.head, "weight", None) is None:
            raise ValueError("model.head_init: class_mean needs a linear or cosine head")
        loader = DataLoader(dm.train_dataset, batch_size=dm.batch_size, shuffle=False,
                            collate_fn=dm.collate_fn)
        init_head_from_class_means(self.model, loader)

    # -- losses ------------------------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of a raw band stack."""
        return self.model(x)

    def training_loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Training (and meta) loss, see :mod:`rs_metapeft.tasks.losses`."""
        if self.multilabel:
            return multilabel_loss(logits, labels, self.loss_kind, self.log_prior, self.tau,
                                   self.asl["gamma_pos"], self.asl["gamma_neg"], self.asl["clip"])
        return classification_loss(logits, labels, self.loss_kind, self.log_prior, self.tau,
                                   self.label_smoothing, self.focal_gamma)

    # -- optimisation ------------------------------------------------------------------------
    def configure_optimizers(self):
        """Inner optimiser over PEFT weights, stem and head; meta optimiser over gamma only."""
        cfg = self.optim_config
        phi = list(split_parameters(self.model)[0].values())
        if not phi:
            raise ValueError("the model has no trainable parameters (check model.peft and head)")
        main = cfg.build(phi)
        total = max(int(self.trainer.estimated_stepping_batches), 1)

        def factor(step: int) -> float:
            if step < cfg.warmup_steps:
                return (step + 1) / cfg.warmup_steps
            if cfg.schedule == "constant":
                return 1.0
            progress = min((step - cfg.warmup_steps) / max(total - cfg.warmup_steps, 1), 1.0)
            return 0.5 * (1 + math.cos(math.pi * progress))

        schedule = torch.optim.lr_scheduler.LambdaLR(main, factor)
        gammas = list(gamma_parameters(self.model).values())
        if not (self.meta_config.enabled and gammas):
            return [main], [schedule]
        mc = self.meta_config
        self.total_outer_steps = sum(mc.is_outer_step(s) for s in range(total))
        if self.total_outer_steps == 0:
            self._warn_run(
                f"model.meta.warmup_steps is {mc.warmup_steps} but the run has {total} training "
                "steps, so no outer step runs: gamma keeps its initial value and this is a "
                "fixed-gamma (PEFT) run, not MetaPEFT. Lower model.meta.warmup_steps or train "
                "for longer"
            )
        meta = build_meta_optimizer(gammas, mc.optimizer, mc.lr, mc.momentum)
        return [main, meta], [schedule]

    def _warn_run(self, message: str) -> None:
        """Warn now (once) and keep the warning for the top of the report."""
        if message not in self.run_warnings:
            rank_zero_warn(message)
            self.run_warnings.append(message)

    def _meta_active(self) -> bool:
        return self.meta_config.enabled and bool(gamma_parameters(self.model))

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        """One inner step; every N steps also an outer (gamma) step.

        With ``meta.lookahead: train_step`` the inner step is the look-ahead: its gradient
        gives ``phi'`` before the optimiser moves, and the real step is the plain one. In every
        mode the inner step runs with the gamma it found, and gamma changes after it.
        """
        mc = self.meta_config
        self._step = self.trainer.global_step  # main.step() below advances global_step
        outer = self._meta_active() and mc.is_outer_step(self._step)
        in_step = outer and mc.plan.train_step
        optimizers = self.optimizers()
        main = optimizers[0] if isinstance(optimizers, list) else optimizers
        if outer:
            self.trainer.datamodule.new_meta_round()
        rng = None
        if in_step:  # replayed for the Hessian-vector product's forward
            rng = torch.get_rng_state()
            if self.device.type == "cuda":
                rng = (rng, torch.cuda.get_rng_state())
        logits = self._inner_forward(batch["image"])
        loss = self.training_loss(logits, batch["label"])
        main.zero_grad(set_to_none=True)
        self.manual_backward(loss)
        result = None
        if in_step:
            result = self._train_step_hypergradient(batch, loss, rng)
        main.step()
        self.lr_schedulers().step()
        if result is not None:
            self._apply_hypergradient(result)
        elif outer:
            self.outer_step()  # separate look-ahead from the stepped phi; leaves phi as it is
        self.log("train/loss", loss, prog_bar=True)
        return loss.detach()

    def _inner_forward(self, images: torch.Tensor) -> torch.Tensor:
        """The model's forward for the inner step: compiled once when asked, else eager."""
        if not self.compile_inner_step:
            return self.model(images)
        compiled = self.__dict__.get("_compiled_model")
        if compiled is None:  # kept out of the module tree: no second copy in the state dict
            compiled = self.__dict__["_compiled_model"] = torch.compile(self.model)
        return compiled(images)

    def _lookahead_rule(self, phi: dict[str, torch.Tensor]):
        """The inner optimiser's next update as a differentiable rule (its state as it is now)."""
        main = self.optimizers(use_pl_optimizer=False)[0]
        mc = self.meta_config
        return rule_from_optimizer(main, phi, mc.lookahead_rule, mc.lookahead_lr)

    def _train_step_hypergradient(self, batch: dict[str, torch.Tensor], loss: torch.Tensor,
                                  rng: Any) -> Hypergradient:
        phi = split_parameters(self.model)[0]
        grads = {n: p.grad for n, p in phi.items()}
        return step_hypergradient(
            self.model, self.training_loss, (batch["image"], batch["label"]), grads,
            self._next_meta_batch("val"), self._lookahead_rule(phi),
            self.meta_config.hypergradient, float(loss.detach()), rng,
            self.meta_config.hvp_batch_size,
        )

    def _next_meta_batch(self, part: str) -> tuple[torch.Tensor, torch.Tensor]:
        batch = self.trainer.datamodule.meta_batch(part, self.device)
        return batch["image"], batch["label"]

    def outer_step(self) -> None:
        """Update gamma through separate look-ahead steps on meta-train batches.

        The look-ahead is functional: PEFT weights, head, stem and optimiser state are untouched,
        so after this step only gamma has changed. A non-finite hypergradient skips the update and
        is counted.
        """
        mc = self.meta_config
        steps = mc.lookahead_steps
        train_batches = [self._next_meta_batch("train") for _ in range(steps)]
        result = lookahead_hypergradient(
            self.model, self.training_loss, train_batches, self._next_meta_batch("val"),
            self._lookahead_rule(split_parameters(self.model)[0]), mc.hypergradient,
        )
        self._apply_hypergradient(result)

    def _apply_hypergradient(self, result: Hypergradient) -> None:
        """All-reduce the hypergradient across ranks, step gamma, clamp, count and log."""
        _, meta = self.optimizers(use_pl_optimizer=False)
        gammas = gamma_parameters(self.model)
        flat = torch.cat([result.grads[n].reshape(-1).float() for n in gammas])
        if self.trainer.world_size > 1 and torch.distributed.is_initialized():
            torch.distributed.all_reduce(flat)
            flat /= self.trainer.world_size
        # Decided on the reduced gradient, so every rank skips or steps together.
        if not bool(torch.isfinite(flat).all()):
            self.skipped_outer_steps += 1
            if self.trainer.training:
                self.log("meta/skipped_steps", float(self.skipped_outer_steps))
            return
        for p, g in zip(gammas.values(), flat.split([p.numel() for p in gammas.values()]),
                        strict=True):
            p.grad = g.view_as(p).to(p.dtype)
        factor = meta_lr_factor(self.meta_config.lr_schedule, self.outer_steps,
                                getattr(self, "total_outer_steps", 0))
        for group in meta.param_groups:
            group["lr"] = self.meta_config.lr * factor
        meta.step()
        meta.zero_grad(set_to_none=True)
        clamp_modulators(self.model, self.meta_config.gamma_min, self.meta_config.gamma_max)
        self.outer_steps += 1
        if not self.trainer.training:  # called by hand (tests, notebooks): nothing to log into
            return
        gmap = gamma_map(self.model)
        self.gamma_history.append((int(getattr(self, "_step", self.trainer.global_step)), gmap))
        values = torch.tensor([v for row in gmap.values() for v in row.values()])
        logs = {
            "meta/train_loss": result.train_loss, "meta/val_loss": result.meta_loss,
            "meta/gamma_mean": float(values.mean()), "meta/gamma_min": float(values.min()),
            "meta/gamma_max": float(values.max()),
            "meta/skipped_steps": float(self.skipped_outer_steps),
            "meta/outer_steps": float(self.outer_steps),
        }
        logs.update({f"gamma/L{layer:02d}_{pos}": v for layer, row in gmap.items()
                     for pos, v in row.items()})
        self.log_dict(logs)

    # -- evaluation --------------------------------------------------------------------------
    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        """Accuracy and class-mean accuracy (multi-label: macro mAP) on the validation split."""
        logits = self.model(batch["image"])
        if self.multilabel:
            self.val_map.update(torch.sigmoid(logits), batch["label"].long())
            self.log("val/mAP", self.val_map, prog_bar=True)
            return
        preds = logits.argmax(1)
        self.val_acc.update(preds, batch["label"])
        self.val_macro_acc.update(preds, batch["label"])
        self.log("val/acc", self.val_acc, prog_bar=True)
        self.log("val/class_mean_acc", self.val_macro_acc)

    def test_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        """Accumulate the confusion matrix (multi-label: the scores and labels)."""
        logits = self.model(batch["image"])
        if self.multilabel:
            self.test_scores.update(torch.sigmoid(logits).float())
            self.test_targets.update(batch["label"].float())
            return
        self.test_confmat.update(logits.argmax(1), batch["label"])

    def predict_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        """Class probabilities (multi-label: per-label sigmoid scores)."""
        return self.scores(batch["image"])

    def scores(self, x: torch.Tensor) -> torch.Tensor:
        """Class probabilities of a raw band stack, or per-label scores of a multi-label model."""
        return label_scores(self.model(x), self.multilabel)

    def label_sets(self, scores: torch.Tensor) -> torch.Tensor:
        """Which labels each sample carries: its scores at or above the labels' thresholds.

        Raises:
            ValueError: the model is single-label.
        """
        if not self.multilabel:
            raise ValueError("label sets are for multi-label models; this one is single-label")
        return scores >= self.thresholds.to(scores.device)


def _config(value: Any, cls: type) -> Any:
    """Accept a dataclass instance (copied, as defaults are shared) or a dict (Python API)."""
    if isinstance(value, cls):
        return copy.deepcopy(value)
    if isinstance(value, dict):
        return cls(**value)
    raise TypeError(f"expected {cls.__name__} or dict, got {type(value).__name__}")
