"""One network of any kind as the engine's K = 1 member, and what both network forms share.

:class:`SingleNet` trains the model itself, in place: the paper's decoder, the skip net, the
convolution-free baselines, and per-pixel networks (``ReLUNet``) that learn from random pixel
minibatches. :class:`~dipspec.fitting.grouped.GroupedNet` runs K decoders as one; both offer
``parameters()``, ``step(code, needs_image)`` and ``copy_to(member, model)`` to the engine.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..tasks import Task

__all__ = ["Crop", "SingleNet", "member_losses", "padded_size"]


def padded_size(height: int, width: int, model: nn.Module) -> tuple[int, int]:
    """The output size the network produces for a ``height × width`` image (then cropped back)."""
    multiple = getattr(model, "required_multiple", lambda: 1)()
    minimum = getattr(model, "min_size", lambda: 1)()

    def up(n: int) -> int:
        return max(minimum, -(-n // multiple) * multiple)

    return up(height), up(width)


@dataclass(frozen=True)
class Crop:
    """Where the image lies in the network's padded output (centred)."""

    top: int
    left: int
    height: int
    width: int

    @classmethod
    def centred(cls, height: int, width: int, model: nn.Module) -> Crop:
        out_h, out_w = padded_size(height, width, model)
        return cls((out_h - height) // 2, (out_w - width) // 2, height, width)

    def __call__(self, x: Tensor) -> Tensor:
        return x[:, :, self.top:self.top + self.height, self.left:self.left + self.width]


def member_losses(output: Tensor, tasks: list[Task], observations: Tensor) -> Tensor:
    """``(K,)``: each member's ``mean((A f(z) − y)²)`` (SPEC §1); their sum is minimised."""
    if len(tasks) == 1:
        return F.mse_loss(tasks[0].A(output), observations)[None]
    return torch.stack([F.mse_loss(task.A(output[m:m + 1]), observations[m:m + 1])
                        for m, task in enumerate(tasks)])


class SingleNet:
    """One model, trained in place; pixel-minibatch networks learn from random pixels.

    A model with a ``pixel_batch`` attribute (``ReLUNet``) is trained on that many random
    pixels per step, drawn from the member's generator after its input perturbation. Under the
    identity operator (and without output averaging) it needs only its minibatch's coordinates:
    the whole image is then evaluated, without a graph, only where ``needs_image`` says the
    history, the instruments or backtracking read it.
    """

    def __init__(self, model: nn.Module, task: Task, observation: Tensor, crop: Crop,
                 generator: torch.Generator, averaging: bool, channels_last: bool = False) -> None:
        self.model, self.task, self.observation, self.crop = model, task, observation, crop
        self.channels_last = channels_last
        if channels_last:  # NHWC kernels and activations (often faster convolutions on CPUs)
            model.to(memory_format=torch.channels_last)
        self.generator = generator
        self.pixel_batch = getattr(model, "pixel_batch", None)
        if self.pixel_batch and task.A(observation).shape != observation.shape:
            raise ValueError(f"{type(model).__name__} trains on pixel minibatches, which needs "
                             f"a task whose operator keeps the image size, not {task.name!r}")
        self.minibatch_only = (bool(self.pixel_batch) and type(task).A is Task.A
                               and not averaging)
        self._image: Tensor | None = None  # minibatch-only: the last evaluated whole image

    def parameters(self) -> list[Tensor]:
        return [p for p in self.model.parameters() if p.requires_grad]

    def member_parameters(self) -> list[Tensor]:
        return self.parameters()

    def step(self, code: Tensor, needs_image: bool) -> tuple[Tensor, Tensor]:
        """``(output, losses)`` of one step: the cropped output ``(1, C, H, W)`` and ``(1,)``."""
        if self.channels_last:
            code = code.contiguous(memory_format=torch.channels_last)
        if self.minibatch_only:
            return self._minibatch_step(code, needs_image)
        output = self.crop(self.model(code))
        if not self.pixel_batch:
            return output, member_losses(output, [self.task], self.observation)
        pixels = self._pixels()
        loss = F.mse_loss(self.task.A(output).flatten(2)[..., pixels],
                          self.observation.flatten(2)[..., pixels])
        return output, loss[None]

    def _minibatch_step(self, code: Tensor, needs_image: bool) -> tuple[Tensor, Tensor]:
        pixels = self._pixels()
        if needs_image or self._image is None:
            with torch.no_grad():
                self._image = self.crop(self.model(code))
        coords = self.crop(code).flatten(2)[..., pixels]
        loss = F.mse_loss(self.model(coords[:, :, None]).flatten(2),
                          self.observation.flatten(2)[..., pixels])
        return self._image, loss[None]

    def _pixels(self) -> Tensor:
        count = self.crop.height * self.crop.width
        return torch.randint(count, (self.pixel_batch,), generator=self.generator,
                             device=self.observation.device)

    def copy_to(self, member: int, model: nn.Module) -> None:
        """Nothing to copy: the model itself was trained."""

    def state_dict(self) -> dict:
        """What a checkpoint needs beyond the model object (pickled with its weights and σ
        state): the last evaluated whole image of a minibatch-only network."""
        return {"image": self._image}

    def load_state_dict(self, state: dict) -> None:
        self._image = state["image"]
