"""The MetaPEFT classification task (a LightningModule with manual optimisation).

Inner steps train PEFT weights, stem and head with gamma fixed; every ``meta.every_n_steps``
steps an outer step takes look-ahead steps on a meta-train batch, evaluates the loss on a
meta-validation batch and updates gamma only. With ``meta.enabled: false`` the same task is the
fixed-hyperparameter PEFT baseline.
"""

from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch.nn import functional as F
from torchmetrics.classification import MulticlassAccuracy, MulticlassConfusionMatrix

from ..data.longtail import GROUPS
from ..meta import MetaConfig, lookahead_hypergradient
from ..models import SpectralViTClassifier, init_head_from_class_means
from ..peft import PeftConfig, gamma_map, gamma_parameters, is_gamma
from ..reporting import build_report, format_report, write_report

__all__ = ["GroupsConfig", "MetaPEFTTask", "OptimizerConfig"]


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

    name: str = "adamw"
    lr: float = 1e-3
    momentum: float = 0.9
    weight_decay: float = 1e-4
    schedule: str = "cosine"
    warmup_steps: int = 0

    def __post_init__(self) -> None:
        if self.name not in ("sgd", "adamw"):
            raise ValueError(f"model.optimizer.name must be sgd or adamw, got {self.name!r}")
        if self.schedule not in ("cosine", "constant"):
            raise ValueError(f"model.optimizer.schedule must be cosine or constant, got {self.schedule!r}")


@dataclass
class GroupsConfig:
    """How classes are grouped into many / medium / few for reporting.

    Attributes:
        rule: ``auto``, ``thresholds`` or ``quantile``.
        many_threshold: classes with more training images are "many".
        few_threshold: classes with fewer training images are "few".
    """

    rule: str = "auto"
    many_threshold: int = 100
    few_threshold: int = 20


class MetaPEFTTask(L.LightningModule):
    """Fine-tune an RGB-pretrained ViT on any band set with modulated PEFT and MetaPEFT.

    Args:
        bands: input band names (linked from the datamodule in recipes).
        num_classes: number of classes (linked from the datamodule in recipes).
        backbone: timm model name.
        weights: ``null`` (random init), a local weights file, ``hub`` or ``hf-hub:<repo>``.
        img_size: input size.
        patch_size: ViT patch size.
        head: ``linear`` or ``cosine``.
        backbone_kwargs: more timm model arguments (e.g. ``{depth: 2}``, ``{drop_path_rate: 0.1}``).
        peft: PEFT positions, layers and sizes (``positions: []`` is a linear probe).
        meta: outer-step settings (``enabled: false`` is the fixed-gamma baseline).
        optimizer: inner optimiser.
        loss: ``ce`` or ``logit_adjusted`` (cross-entropy with ``tau * log prior`` added to the
            training logits).
        logit_adjust_tau: tau of the logit-adjusted loss.
        groups: grouping of classes in the report.
        report_dir: where ``report.json`` / ``report.md`` go (default: the run's log folder).
        stem: spectral stem: ``rgb_select``, ``band_mix``, ``patch_expand``, ``wavelength_hyper``.
        head_scale: logit scale of the cosine head.
        head_init: ``random`` or ``class_mean`` (head from class-mean features at fit start).
    """

    def __init__(
        self,
        bands: list[str],
        num_classes: int,
        backbone: str = "vit_tiny_patch16_224",
        weights: str | None = None,
        img_size: int = 64,
        patch_size: int | None = 8,
        head: str = "linear",
        backbone_kwargs: dict | None = None,
        peft: PeftConfig = PeftConfig(),  # noqa: B008 - copied below
        meta: MetaConfig = MetaConfig(),  # noqa: B008 - copied below
        optimizer: OptimizerConfig = OptimizerConfig(),  # noqa: B008 - copied below
        loss: str = "ce",
        logit_adjust_tau: float = 1.0,
        groups: GroupsConfig = GroupsConfig(),  # noqa: B008 - copied below
        report_dir: str | None = None,
        stem: str = "band_mix",
        head_scale: float = 25.0,
        head_init: str = "random",
    ) -> None:
        super().__init__()
        peft, meta, optimizer, groups = (
            _config(peft, PeftConfig), _config(meta, MetaConfig),
            _config(optimizer, OptimizerConfig), _config(groups, GroupsConfig),
        )
        if loss not in ("ce", "logit_adjusted"):
            raise ValueError(f"model.loss must be ce or logit_adjusted, got {loss!r}")
        self.save_hyperparameters({
            "bands": list(bands), "num_classes": num_classes, "backbone": backbone,
            "weights": weights, "img_size": img_size, "patch_size": patch_size, "head": head,
            "backbone_kwargs": backbone_kwargs,
            "peft": asdict(peft), "meta": asdict(meta), "optimizer": asdict(optimizer),
            "loss": loss, "logit_adjust_tau": logit_adjust_tau, "groups": asdict(groups),
            "report_dir": report_dir,
            "stem": stem, "head_scale": head_scale, "head_init": head_init,
        })
        self.automatic_optimization = False
        self.peft_config, self.meta_config = peft, meta
        self.optim_config, self.groups_config = optimizer, groups
        self.loss_kind, self.tau = loss, logit_adjust_tau
        self.report_dir = report_dir
        self.model = SpectralViTClassifier(
            bands, num_classes, backbone, weights, img_size, patch_size,
            peft, head, backbone_kwargs, stem, head_scale,
        )
        self.head_init = _head_init(head_init)
        self.register_buffer("log_prior", torch.zeros(num_classes))
        self.class_names: list[str] = [str(i) for i in range(num_classes)]
        self.train_counts: list[int] = [0] * num_classes
        self.skipped_outer_steps = 0
        self.outer_steps = 0
        self.last_report: dict | None = None
        self._meta_iters: dict[str, Any] = {}
        self.val_acc = MulticlassAccuracy(num_classes, average="micro")
        self.val_macro_acc = MulticlassAccuracy(num_classes, average="macro")
        self.test_confmat = MulticlassConfusionMatrix(num_classes)

    # -- data wiring -------------------------------------------------------------------------
    def setup(self, stage: str) -> None:
        """Take band statistics, class names and counts from the datamodule; check they fit."""
        dm = getattr(self.trainer, "datamodule", None) if self._trainer is not None else None
        if dm is None:
            return
        if list(dm.bands) != list(self.model.bands):
            raise ValueError(
                f"the model was built for bands {self.model.bands} but the data has bands "
                f"{list(dm.bands)}; use the same data.bands the model was trained with"
            )
        if stage == "fit":
            stats = dm.band_stats
            self.model.normalizer.set_statistics(stats.mean, stats.std)
            self.train_counts = list(dm.train_counts)
            counts = torch.tensor(self.train_counts, dtype=torch.float)
            self.log_prior.copy_((counts / counts.sum()).log())
        elif not bool(self.model.normalizer.fitted):
            raise ValueError(
                "this model has no band statistics: train it first (fit) or load a checkpoint"
            )
        if dm.class_names:
            if stage != "fit" and any(self.train_counts) and len(dm.class_names) != len(self.class_names):
                raise ValueError(f"classes differ: model {self.class_names}, data {dm.class_names}")
            self.class_names = list(dm.class_names)

    def on_fit_start(self) -> None:
        """Initialise the head from class-mean features of the training data, if asked."""
        if self.head_init == "class_mean" and self.trainer.datamodule is not None:
            init_head_from_class_means(self.model, self.trainer.datamodule.train_dataloader())

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Make checkpoints self-describing: bands, statistics, classes, counts, groups, gamma."""
        norm = self.model.normalizer
        checkpoint["rs_metapeft"] = {
            "bands": list(self.model.bands),
            "stem": self.model.stem_kind,
            "band_mean": norm.mean.tolist(),
            "band_std": norm.std.tolist(),
            "classes": self.class_names,
            "train_counts": self.train_counts,
            "gamma": gamma_map(self.model),
            "outer_steps": self.outer_steps,
            "skipped_outer_steps": self.skipped_outer_steps,
        }

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Restore classes, counts and meta counters saved by :meth:`on_save_checkpoint`."""
        info = checkpoint.get("rs_metapeft", {})
        self.class_names = info.get("classes", self.class_names)
        self.train_counts = info.get("train_counts", self.train_counts)
        self.outer_steps = info.get("outer_steps", 0)
        self.skipped_outer_steps = info.get("skipped_outer_steps", 0)

    # -- losses ------------------------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of a raw band stack."""
        return self.model(x)

    def training_loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Training (and meta) loss: cross-entropy, optionally logit-adjusted by class priors."""
        if self.loss_kind == "logit_adjusted":
            logits = logits + self.tau * self.log_prior.to(logits.dtype)
        return F.cross_entropy(logits, labels)

    # -- optimisation ------------------------------------------------------------------------
    def configure_optimizers(self):
        """Inner optimiser over PEFT weights, stem and head; meta optimiser over gamma only."""
        cfg = self.optim_config
        phi = [p for n, p in self.model.named_parameters() if p.requires_grad and not is_gamma(n)]
        if cfg.name == "sgd":
            main = torch.optim.SGD(phi, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
        else:
            main = torch.optim.AdamW(phi, lr=cfg.lr, weight_decay=cfg.weight_decay)
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
        if mc.optimizer == "sgd":
            meta = torch.optim.SGD(gammas, lr=mc.lr, momentum=mc.momentum)
        else:
            meta = torch.optim.Adam(gammas, lr=mc.lr)
        return [main, meta], [schedule]

    def _meta_active(self) -> bool:
        return self.meta_config.enabled and bool(gamma_parameters(self.model))

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        """One inner step, preceded every N steps by an outer (gamma) step."""
        step = self.trainer.global_step
        mc = self.meta_config
        if self._meta_active() and step >= mc.warmup_steps and step % mc.every_n_steps == 0:
            self.outer_step()
        optimizers = self.optimizers()
        main = optimizers[0] if isinstance(optimizers, list) else optimizers
        logits = self.model(batch["image"])
        loss = self.training_loss(logits, batch["label"])
        main.zero_grad(set_to_none=True)
        self.manual_backward(loss)
        main.step()
        self.lr_schedulers().step()
        self.log("train/loss", loss, prog_bar=True)
        return loss.detach()

    def _next_meta_batch(self, part: str) -> tuple[torch.Tensor, torch.Tensor]:
        if part not in self._meta_iters:
            self._meta_iters[part] = self.trainer.datamodule.meta_batches(part, self.device)
        batch = next(self._meta_iters[part])
        return batch["image"], batch["label"]

    def outer_step(self) -> None:
        """Update gamma with the meta-validation gradient through a look-ahead.

        The look-ahead is functional: PEFT weights, head, stem and optimiser state are untouched,
        so after this step only gamma has changed. A non-finite hypergradient skips the update and
        is counted.
        """
        mc = self.meta_config
        main, meta = self.optimizers(use_pl_optimizer=False)
        lr = mc.lookahead_lr if mc.lookahead_lr is not None else main.param_groups[0]["lr"]
        train_batches = [self._next_meta_batch("train") for _ in range(mc.lookahead_steps)]
        result = lookahead_hypergradient(
            self.model, self.training_loss, train_batches, self._next_meta_batch("val"),
            lr, mc.hypergradient,
        )
        if not result.finite:
            self.skipped_outer_steps += 1
            if self.trainer.training:
                self.log("meta/skipped_steps", float(self.skipped_outer_steps))
            return
        gammas = gamma_parameters(self.model)
        grads = [result.grads[n] for n in gammas]
        if self.trainer.world_size > 1 and torch.distributed.is_initialized():
            flat = torch.cat([g.reshape(-1) for g in grads])
            torch.distributed.all_reduce(flat)
            flat /= self.trainer.world_size
            grads = list(flat.split([g.numel() for g in grads]))
            grads = [g.view_as(p) for g, p in zip(grads, gammas.values(), strict=True)]
        for p, g in zip(gammas.values(), grads, strict=True):
            p.grad = g.to(p.dtype)
        meta.step()
        meta.zero_grad(set_to_none=True)
        self._clamp_gamma()
        self.outer_steps += 1
        if not self.trainer.training:  # called by hand (tests, notebooks): nothing to log into
            return
        values = torch.stack([m.modulation().detach().float().mean() for m in self.model.peft_modules])
        self.log_dict({
            "meta/train_loss": result.train_loss, "meta/val_loss": result.meta_loss,
            "meta/gamma_mean": values.mean(), "meta/gamma_min": values.min(),
            "meta/gamma_max": values.max(), "meta/skipped_steps": float(self.skipped_outer_steps),
        })

    def _clamp_gamma(self) -> None:
        mc = self.meta_config
        if mc.gamma_min is None and mc.gamma_max is None:
            return
        with torch.no_grad():
            for module in self.model.peft_modules:
                if module.gamma_param == "identity":
                    module.gamma.clamp_(mc.gamma_min, mc.gamma_max)

    # -- evaluation --------------------------------------------------------------------------
    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        """Accuracy and class-mean accuracy on the validation split."""
        preds = self.model(batch["image"]).argmax(1)
        self.val_acc.update(preds, batch["label"])
        self.val_macro_acc.update(preds, batch["label"])
        self.log("val/acc", self.val_acc, prog_bar=True)
        self.log("val/class_mean_acc", self.val_macro_acc)

    def test_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        """Accumulate the confusion matrix."""
        self.test_confmat.update(self.model(batch["image"]).argmax(1), batch["label"])

    def on_test_epoch_end(self) -> None:
        """Build the tail-class report; print and write it on the main process."""
        confusion = self.test_confmat.compute().cpu().numpy()
        self.test_confmat.reset()
        g = self.groups_config
        report = build_report(confusion, self.class_names, self.train_counts, g.rule,
                              g.many_threshold, g.few_threshold)
        report["gamma"] = {str(k): v for k, v in gamma_map(self.model).items()}
        report["meta"] = {"enabled": self.meta_config.enabled, "outer_steps": self.outer_steps,
                          "skipped_outer_steps": self.skipped_outer_steps,
                          "hypergradient": self.meta_config.hypergradient}
        report["trainable_parameters"] = sum(
            p.numel() for n, p in self.model.named_parameters() if p.requires_grad
        )
        report["gamma_parameters"] = sum(p.numel() for p in gamma_parameters(self.model).values())
        # Set by the CLI around fit (None when only testing); `rs-metapeft compare` shows it.
        report["fit_wall_time_s"] = getattr(self, "fit_wall_time_s", None)
        self.last_report = report
        self.log("test/acc", report["overall_accuracy"])
        self.log("test/class_mean_acc", report["class_mean_accuracy"])
        self.log("test/macro_f1", report["macro_f1"])
        for group in GROUPS:
            if report["group_accuracy"][group] is not None:
                self.log(f"test/{group}_acc", report["group_accuracy"][group])
        if self.trainer.is_global_zero:
            folder = Path(self.report_dir or self.trainer.log_dir or self.trainer.default_root_dir)
            json_path, _ = write_report(report, folder)
            report["path"] = str(json_path.parent)
            print("\n" + format_report(report) + f"\nReport written to {json_path.parent}/\n")

    def predict_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        """Class probabilities."""
        return self.model(batch["image"]).softmax(1)


def _head_init(value: str) -> str:
    if value not in ("random", "class_mean"):
        raise ValueError(f"model.head_init must be random or class_mean, got {value!r}")
    return value


def _config(value: Any, cls: type) -> Any:
    """Accept a dataclass instance (copied, as defaults are shared) or a dict (Python API)."""
    if isinstance(value, cls):
        return copy.deepcopy(value)
    if isinstance(value, dict):
        return cls(**value)
    raise TypeError(f"expected {cls.__name__} or dict, got {type(value).__name__}")
