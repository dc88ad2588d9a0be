"""Head modules: linear probe and the NMTune MLP-with-residual head (method.md §3)."""

from __future__ import annotations

import torch
from torch import nn

from nmtune.tuner.config import HeadConfig

__all__ = ["HeadModule", "LinearHead", "NMTuneHead", "build_head"]


def _make_classifier(dim: int, n_classes: int) -> nn.Linear:
    """Linear(D, C) with kaiming-uniform weights and zero bias."""
    clf = nn.Linear(dim, n_classes)
    nn.init.kaiming_uniform_(clf.weight)
    nn.init.zeros_(clf.bias)
    return clf


class HeadModule(nn.Module):
    """Common interface: ``forward(f) -> (logits (B, C), z (B, D))``."""

    classifier: nn.Linear

    def adapt(self, f: torch.Tensor) -> torch.Tensor:
        """Adapted features z (B, D)."""
        raise NotImplementedError

    def forward(self, f: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = self.adapt(f)  # (B, D)
        logits: torch.Tensor = self.classifier(z)
        return logits, z  # (B, C), (B, D)


class LinearHead(HeadModule):
    """Linear probe: logits = W f + b, z = f."""

    def __init__(self, dim: int, n_classes: int) -> None:
        super().__init__()
        self.classifier = _make_classifier(dim, n_classes)

    def adapt(self, f: torch.Tensor) -> torch.Tensor:
        return f


class NMTuneHead(HeadModule):
    """MLP h with residual ``z = a * h(f) + f`` and a linear classifier on z.

    With the paper configuration h = Linear(D, 4D) -> BatchNorm1d -> ReLU -> Linear(4D, D)
    and ``a`` a learnable per-dimension scale initialised to 1.0.
    """

    def __init__(
        self,
        dim: int,
        n_classes: int,
        *,
        hidden_ratio: float = 4.0,
        num_layers: int = 2,
        norm: str = "batchnorm",
        residual: bool = True,
        residual_init: float = 1.0,
        zero_init_branch: bool = False,
    ) -> None:
        super().__init__()
        hidden = max(1, round(dim * hidden_ratio))
        widths = [dim] + [hidden] * (num_layers - 1) + [dim]
        layers: list[nn.Module] = []
        for i in range(num_layers):
            layers.append(nn.Linear(widths[i], widths[i + 1]))
            if i < num_layers - 1:
                if norm == "batchnorm":
                    layers.append(nn.BatchNorm1d(widths[i + 1]))
                elif norm == "layernorm":
                    layers.append(nn.LayerNorm(widths[i + 1]))
                layers.append(nn.ReLU())
        self.mlp = nn.Sequential(*layers)
        last = layers[-1]
        if zero_init_branch and isinstance(last, nn.Linear):  # h(f) = 0 at step 0: z = f
            nn.init.zeros_(last.weight)
            nn.init.zeros_(last.bias)
        self.residual = residual
        self.scale = nn.Parameter(torch.full((dim,), float(residual_init)))  # (D,)
        self.classifier = _make_classifier(dim, n_classes)

    def adapt(self, f: torch.Tensor) -> torch.Tensor:
        h: torch.Tensor = self.mlp(f)  # (B, D)
        if self.residual:
            return self.scale * h + f  # (B, D)
        return h


def build_head(config: HeadConfig, dim: int, n_classes: int) -> HeadModule:
    """Build the (untrained) module of ``config.method`` ('lr', 'lp', 'mlp', 'nmtune')."""
    if config.method in ("lr", "lp"):
        return LinearHead(dim, n_classes)
    if config.method in ("mlp", "nmtune"):
        return NMTuneHead(
            dim,
            n_classes,
            hidden_ratio=config.hidden_ratio,
            num_layers=config.num_layers,
            norm=config.norm,
            residual=config.residual,
            residual_init=config.residual_init,
            zero_init_branch=config.zero_init_branch,
        )
    raise ValueError(f"cannot build a head for method {config.method!r}")
