"""The language-model LightningModule: GPT-2 + LoRA trained on CE + lambda_phi x a Φ shortfall penalty."""
from __future__ import annotations

from typing import Any, Optional

import lightning.pytorch as pl
import torch
from lightning.pytorch.trainer.states import TrainerFn
from torch import Tensor
from torchmetrics import MeanMetric
from torchmetrics.text import Perplexity

from atheria.errors import ConfigError
from atheria.lm.model import build_gpt2_lora
from atheria.lm.phi import PhiMeter, phi_penalty


def _ids(batch: Any) -> Tensor:
    return batch["input_ids"] if isinstance(batch, dict) else batch


class LMModule(pl.LightningModule):
    """One training step is one batch of token blocks; checkpoints hold the adapters, not the base model."""

    baseline_validation = True  # validate once before training, so perplexity before/after is in the metrics

    def __init__(self, pretrained: Optional[str] = None, lora_r: int = 8, lora_alpha: int = 32,
                 lora_dropout: float = 0.1, target_modules: tuple[str, ...] = ("c_attn", "c_proj"),
                 n_layer: int = 2, n_embd: int = 64, n_head: int = 2, lambda_phi: float = 1.0,
                 phi_target: float = 6.0, phi_layer: Optional[int] = None, lr: float = 2e-4,
                 betas: tuple[float, float] = (0.9, 0.98), weight_decay: float = 0.01, plateau_factor: float = 0.5,
                 plateau_patience: int = 2, smoothing: float = 0.1, seed: int = 42, family: str = "lm") -> None:
        super().__init__()
        self.save_hyperparameters(logger=False)  # the loggers get the whole composed config (describe_run)
        self.model = build_gpt2_lora(pretrained, lora_r, lora_alpha, lora_dropout, target_modules, n_layer, n_embd,
                                     n_head, base_seed=seed)
        self.phi = PhiMeter(self.model.config.n_embd, seed=seed)
        # hidden_states[0] is the embeddings, [i] block i's output; a middle block by default, where Φ competes
        # least with the next-token loss that shapes the last one.
        n = self.model.config.n_layer
        self.phi_layer = n // 2 if phi_layer is None else phi_layer
        if not -n - 1 <= self.phi_layer <= n:
            raise ConfigError(f"model.phi_layer={phi_layer} is no hidden state of {pretrained or 'this GPT-2'}; "
                              f"accepted: null (the middle block) or an index in [-{n + 1}, {n}]")
        self.val_perplexity = Perplexity()
        self.val_loss = MeanMetric()
        self.plateau: Optional[torch.optim.lr_scheduler.ReduceLROnPlateau] = None
        self._plateau_state: Optional[dict[str, Any]] = None  # from the checkpoint, for configure_optimizers
        # The base model is rebuilt from `pretrained` (or the seeded config); checkpoints need only the adapters.
        self.strict_loading = False
        self.register_buffer("loss_smooth", torch.tensor(float("nan")))
        self.step_metrics: dict[str, Tensor] = {}

    def forward(self, ids: Tensor) -> tuple[Any, Tensor]:
        """Causal LM outputs (logits, CE loss against the next token) and Φ of the chosen layer's hidden states."""
        out = self.model(input_ids=ids, labels=ids, output_hidden_states=True)
        return out, self.phi(out.hidden_states[self.phi_layer])

    def training_step(self, batch: Any, batch_idx: int) -> Tensor:
        # Dropout drawn from a generator seeded by the step: a resumed run repeats it exactly.
        torch.manual_seed(self.hparams.seed * 1_000_003 + self.global_step)
        out, phi = self(_ids(batch))
        shortfall = phi_penalty(phi, self.hparams.phi_target)
        loss = out.loss + self.hparams.lambda_phi * shortfall
        value = loss.detach()
        first = torch.isnan(self.loss_smooth)
        a = self.hparams.smoothing
        self.loss_smooth.copy_(torch.where(first, value, self.loss_smooth + a * (value - self.loss_smooth)))
        # The step's metrics, for atheria.callbacks.history.EpisodeHistory (self.log costs too much per step).
        self.step_metrics = {"train/loss": value, "train/loss_smooth": self.loss_smooth, "train/ce": out.loss.detach(),
                             "train/phi": phi.detach(), "train/phi_loss": shortfall.detach()}
        return loss

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        ids = _ids(batch)
        out, phi = self(ids)
        self.val_perplexity.update(out.logits[:, :-1].float(), ids[:, 1:])
        self.val_loss.update(out.loss)
        self.log("val/loss", self.val_loss, prog_bar=True)
        self.log("val/phi", phi)
        self.log("val/perplexity", self.val_perplexity)
        self.log("episode", float(self.global_step))

    def on_validation_epoch_end(self) -> None:
        # ReduceLROnPlateau steps here, at each validation of the training cadence (trainer.val_check_interval), before
        # that episode's checkpoint is written: stepped by Lightning, it stepped after the checkpoint, so a resume
        # from it lost that step. Never at the validation Lightning adds when a session stops between two of the
        # cadence (an uninterrupted run has none there) nor at the one before training.
        trainer = self.trainer
        every = int(trainer.val_check_interval)
        if (self.plateau is not None and trainer.state.fn == TrainerFn.FITTING and not trainer.sanity_checking
                and trainer.global_step % every == 0):
            self.plateau.step(float(self.val_loss.compute()))

    def configure_optimizers(self) -> torch.optim.Optimizer:
        hp = self.hparams
        params = [p for p in self.model.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(params, lr=hp.lr, betas=tuple(hp.betas), weight_decay=hp.weight_decay)
        self.plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=hp.plateau_factor,
                                                                  patience=hp.plateau_patience)
        if self._plateau_state is not None:
            self.plateau.load_state_dict(self._plateau_state)
        return optimizer

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # Checkpoints written while Lightning stepped the schedule hold it in its list of schedulers.
        self._plateau_state = checkpoint.get("lr_plateau") or next(iter(checkpoint.get("lr_schedulers") or []), None)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if self.plateau is not None:
            checkpoint["lr_plateau"] = self.plateau.state_dict()
        trainable = {f"model.{n}" for n, p in self.model.named_parameters() if p.requires_grad}
        checkpoint["state_dict"] = {k: v for k, v in checkpoint["state_dict"].items()
                                    if k in trainable or not k.startswith("model.")}
