"""K networks of one architecture run as one grouped network (the engine's K > 1 form).

The K networks share an architecture but nothing else: each member has its own weights, Adam
moments, λ or σ. They run side by side as one network K times as wide whose convolutions are
grouped (``groups=K``), so every step is one forward, one backward and one Adam update for all K
members. The members never mix: a grouped convolution keeps each member's channels apart, the
loss is a sum of the members' own losses, and Adam is elementwise. Only the order of
floating-point sums inside a grouped convolution differs from K separate fits.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..nn import (
    GaussianUpsample,
    MeanOnlyBatchNorm,
    _ControlledNet,
    _gaussian_upsample,
    _LipschitzMixin,
    _sigma_for,
)
from ..tasks import Task
from .single import Crop, member_losses

__all__ = ["GroupedNet", "check_groupable", "widest_conv"]

#: Modules that act on each channel separately: they run unchanged on the K stacked networks.
_CHANNELWISE = (nn.ReflectionPad2d, nn.ReplicationPad2d, nn.ZeroPad2d, nn.ConstantPad2d,
                nn.Upsample, nn.LeakyReLU, nn.ReLU, nn.ELU, nn.Softplus, nn.Sigmoid, nn.Tanh,
                nn.Identity)
_CONVS = (nn.Conv2d, nn.ConvTranspose2d)


class GroupedNet:
    """K networks of one architecture evaluated as a single grouped network.

    Activations are ``(1, K·C, H, W)``: member ``k`` owns channels ``[k·C, (k+1)·C)``. Every
    parameter is one stacked leaf tensor ``(K, ...)`` that Adam updates directly.
    """

    def __init__(self, models: list[nn.Module], channels_last: bool, split_convs: bool, *,
                 crop: Crop | None = None, tasks: list[Task] | None = None,
                 observations: Tensor | None = None) -> None:
        self.k = len(models)
        self.crop, self.tasks, self.observations = crop, tasks, observations
        self.template = models[0]
        self.channels_last = channels_last and not split_convs
        self.split_convs = split_convs
        named = [dict(m.named_parameters()) for m in models]
        with torch.no_grad():
            self.params = {name: torch.stack([n[name].detach() for n in named]).requires_grad_()
                           for name in named[0]}
        self.controlled: dict[str, tuple[str, Tensor, bool]] = {}  # weight -> (method, λ, T)
        self.kernels: dict[str, Tensor] = {}  # Gaussian upsamplers: (K, 1, 5, 5)
        self.vectors: dict[tuple, Tensor | None] = {}  # "warm" σ state per group of layers
        modules = [dict(m.named_modules()) for m in models]
        for path, module in self.template.named_modules():
            if isinstance(module, _LipschitzMixin):
                layers = [mods[path] for mods in modules]
                lambdas = [layer.lipschitz_lambda for layer in layers]
                if all(lam is None for lam in lambdas):
                    continue
                table = torch.tensor([math.inf if lam is None else lam for lam in lambdas],
                                     dtype=module.weight.dtype, device=module.weight.device)
                transposed = isinstance(module, nn.ConvTranspose2d)
                self.controlled[_join(path, "weight")] = (module.sigma_method, table, transposed)
            elif isinstance(module, GaussianUpsample):
                self.kernels[path] = torch.cat([mods[path].weight for mods in modules])
        self.groups = self._groups()
        for key, names in self.groups.items():
            vectors = [mods[name.rsplit(".", 1)[0]]._sigma_vector for name in names
                       for mods in modules]
            complete = key[1] == "warm" and all(v is not None for v in vectors)
            like = self.params[names[0]]
            self.vectors[key] = torch.stack([v.to(like) for v in vectors]) if complete else None

    def _matrices(self, name: str) -> Tensor:
        """The stacked kernels of a controlled layer as ``(K, out, in·k·k)`` matrices."""
        weight = self.params[name].detach()
        if self.controlled[name][2]:  # transposed conv: (in, out, k, k) read as (out, in·k·k)
            weight = weight.transpose(1, 2)
        return weight.flatten(2)

    def _groups(self) -> dict[tuple, list[str]]:
        """Controlled weights by (matrix shape, σ method): one σ solve per group and step."""
        groups: dict[tuple, list[str]] = {}
        for name, (method, _, _) in self.controlled.items():
            key = (tuple(self._matrices(name).shape[1:]), method)
            groups.setdefault(key, []).append(name)
        return groups

    def effective_weights(self) -> dict[str, Tensor]:
        """``W̄ / max(1, σ/λ)`` for every controlled layer and member, one solve per shape."""
        weights = {}
        for key, names in self.groups.items():
            stacked = torch.cat([self._matrices(name) for name in names])  # (L·K, r, c)
            sigmas, self.vectors[key] = _sigma_for(stacked, key[1], self.vectors[key])
            for name, sigma in zip(names, sigmas.view(len(names), self.k)):
                divisor = torch.clamp(sigma / self.controlled[name][1], min=1.0)
                weight = self.params[name]
                weights[name] = weight / divisor.view(-1, *[1] * (weight.ndim - 1))
        return weights

    def forward(self, code: Tensor) -> Tensor:
        """``code`` ``(1, K·C_in, h, w)`` → output ``(K, C, H, W)``."""
        weights = {**self.params, **self.effective_weights()}
        out = self._run(self.template.body, code, "body", weights)
        return out.contiguous().view(self.k, -1, *out.shape[-2:])

    def step(self, code: Tensor, needs_image: bool = True) -> tuple[Tensor, Tensor]:
        """``(output, losses)`` of one step: cropped outputs ``(K, C, H, W)`` and ``(K,)``."""
        output = self.crop(self.forward(code))
        return output, member_losses(output, self.tasks, self.observations)

    def _run(self, module: nn.Module, x: Tensor, path: str, weights: dict[str, Tensor]) -> Tensor:
        if isinstance(module, nn.Sequential):
            for name, child in module.named_children():
                x = self._run(child, x, _join(path, name), weights)
            return x
        if isinstance(module, _CONVS):
            return self._conv(module, x, path, weights)
        if isinstance(module, MeanOnlyBatchNorm):
            bias = weights[_join(path, "bias")]
            return x - x.mean(dim=(2, 3), keepdim=True) + bias.view(1, -1, 1, 1)
        if isinstance(module, GaussianUpsample):
            return _gaussian_upsample(x, self.kernels[path])
        return module(x)  # channel-wise (checked by check_groupable)

    def _conv(self, module: nn.Module, x: Tensor, path: str, weights: dict[str, Tensor]) -> Tensor:
        weight = weights[_join(path, "weight")].flatten(0, 1)
        bias = weights.get(_join(path, "bias"))
        bias = None if bias is None else bias.flatten()
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        if isinstance(module, nn.ConvTranspose2d):
            def conv(x, weight, bias, groups):
                return F.conv_transpose2d(x, weight, bias, module.stride, module.padding,
                                          module.output_padding, groups, module.dilation)
        else:
            if module.padding_mode != "zeros":
                x = F.pad(x, module._reversed_padding_repeated_twice, mode=module.padding_mode)

            def conv(x, weight, bias, groups):
                padding = module.padding if module.padding_mode == "zeros" else 0
                return F.conv2d(x, weight, bias, module.stride, padding, module.dilation, groups)
        if not self.split_convs:
            return conv(x, weight, bias, module.groups * self.k)
        # one convolution per member on its slice of the channels (wide layers on a CPU)
        biases = [None] * self.k if bias is None else bias.chunk(self.k)
        return torch.cat([conv(part, w, b, module.groups) for part, w, b in
                          zip(x.chunk(self.k, dim=1), weight.chunk(self.k), biases)], dim=1)

    def copy_to(self, member: int, model: nn.Module) -> None:
        """Write member ``member``'s current weights (and σ state) into ``model``."""
        with torch.no_grad():
            for name, param in model.named_parameters():
                param.copy_(self.params[name][member])
        modules = dict(model.named_modules())
        for key, names in self.groups.items():
            vectors = self.vectors[key]
            if vectors is None:
                continue
            for i, name in enumerate(names):
                modules[name.rsplit(".", 1)[0]]._sigma_vector = vectors[i * self.k + member].clone()

    def parameters(self) -> list[Tensor]:
        return list(self.params.values())

    def state_dict(self) -> dict:
        """The stacked weights and the warm σ state (the models keep their initial weights)."""
        return {"params": {name: p.detach() for name, p in self.params.items()},
                "vectors": dict(self.vectors)}

    def load_state_dict(self, state: dict) -> None:
        with torch.no_grad():
            for name, param in self.params.items():
                param.copy_(state["params"][name])
        self.vectors = dict(state["vectors"])

    def member_parameters(self) -> list[Tensor]:
        """One member's parameters (the template's), for choices made per network."""
        return list(self.template.parameters())


def widest_conv(model: nn.Module) -> int:
    """The largest ``in_channels × out_channels`` of the model's convolutions."""
    return max((m.in_channels * m.out_channels for m in model.modules()
                if isinstance(m, _CONVS)), default=0)


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def check_groupable(models: list[nn.Module]) -> None:
    """Raise ``ValueError`` unless the models can run as one grouped network."""
    first = models[0]
    if not isinstance(first, _ControlledNet):
        raise ValueError(f"fit_many runs Decoder and ConvNet models, got {type(first).__name__}; "
                         "fit other models one by one with dipspec.fit")
    for path, module in first.body.named_modules():
        if isinstance(module, (nn.Sequential, *_CONVS, MeanOnlyBatchNorm, GaussianUpsample,
                               *_CHANNELWISE)):
            continue
        raise ValueError(f"fit_many cannot batch the layer {path!r} ({type(module).__name__}); "
                         "fit this model one by one with dipspec.fit")
    reference = _signature(first)
    for k, model in enumerate(models[1:], start=1):
        if type(model) is not type(first):
            raise ValueError(f"fit_many needs one architecture, got {type(first).__name__} and "
                             f"{type(model).__name__} (model {k})")
        signature = _signature(model)
        if signature != reference:
            diff = next(a for a, b in zip(signature + [None], reference + [None]) if a != b)
            raise ValueError(f"fit_many needs models of one architecture (same channels, stages "
                             f"and upsampling); model {k} differs from model 0 at {diff}; "
                             "λ and σ may differ, nothing else")


def _signature(model: nn.Module) -> list:
    """What must agree between members: module types, shapes and non-λ/σ settings."""
    items: list = [("upsample", getattr(model, "upsample", None))]
    for path, module in model.named_modules():
        entry = [path, type(module).__name__]
        if isinstance(module, _CONVS):
            entry += [module.stride, module.padding, module.dilation, module.groups,
                      module.padding_mode, getattr(module, "output_padding", None)]
        if isinstance(module, _LipschitzMixin):
            entry.append(module.sigma_method)
        if isinstance(module, nn.Upsample):
            entry += [module.mode, module.scale_factor, module.align_corners]
        if isinstance(module, nn.LeakyReLU):
            entry.append(module.negative_slope)
        if isinstance(module, (nn.ReflectionPad2d, nn.ReplicationPad2d, nn.ZeroPad2d,
                               nn.ConstantPad2d)):
            entry.append(module.padding)
        items.append(tuple(entry))
    items += [(name, tuple(p.shape), p.dtype) for name, p in model.named_parameters()]
    return items
