"""A convolutional branch evaluated at every position of a sliding window, without redundant work.

A trunk's convolutional branches read a fixed-size window — 40 spectrogram frames, 256
score columns — that slides along a much longer input. Neighbouring windows share almost all their
input, and with unpadded convolutions they share almost all their intermediate columns too; only the
column strides get in the way (a window moved by one column sees a stride-2 layer's grid shifted by
half a step). Evaluating every layer at *every* column, with the column stride turned into a dilation
of the layers after it (the "à trous" trick of WaveNet's fast generation), gives one feature map from
which each window's output is a strided slice. Two ways to use that here:

- :func:`branch_at_every_window` — all windows of a known input at once: the spectrogram features of
  every frame of a performance, the score features of every follower position in a strip. This is
  what lets a frozen trunk be looked up instead of run (fast RL on a pre-trained trunk).
- :class:`StreamingBranch` — a live stream, one new column per step: each layer computes just its
  newest output column. This is what makes the seed-size model real-time on one CPU core.

Both are exact: they give what the branch itself gives on each window (up to float rounding), which
the tests check. Only unpadded, ungrouped, undilated ``Conv2d`` layers with elementwise layers
(activations, dropout in eval mode) between them are supported; anything else is refused.

This module knows no trunk: :mod:`agents.networks` builds each trunk's incremental form and feature
tables on these two.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn
from torch.nn import functional as F

_ELEMENTWISE = (nn.ELU, nn.ReLU, nn.LeakyReLU, nn.Tanh, nn.Sigmoid, nn.GELU, nn.Identity, nn.Dropout)


@dataclass(frozen=True)
class _Layer:
    conv: nn.Conv2d
    then: tuple[nn.Module, ...]  # the elementwise layers that follow it
    dilation: int  # the column dilation of this layer in the every-column form
    span: int  # input columns one output column reads: (kernel width - 1) * dilation + 1


class _EveryColumnForm:
    """The branch's layers, with column strides turned into dilations of the layers after them."""

    def __init__(self, convs: nn.Sequential, window_shape: tuple[int, int, int]):
        layers: list[_Layer] = []
        dilation = 1
        pending: _Layer | None = None
        for module in convs:
            if isinstance(module, nn.Flatten):
                break
            if isinstance(module, nn.Conv2d):
                if (module.padding not in ((0, 0), "valid") or module.dilation != (1, 1) or module.groups != 1
                        or module.padding_mode != "zeros"):
                    raise ValueError(f"sliding evaluation needs plain unpadded convolutions, got {module}")
                if pending is not None:
                    layers.append(pending)
                span = (module.kernel_size[1] - 1) * dilation + 1
                pending = _Layer(module, (), dilation, span)
                dilation *= module.stride[1]
            elif isinstance(module, _ELEMENTWISE):
                if pending is None:
                    raise ValueError(f"sliding evaluation: {module} before the first convolution")
                pending = _Layer(pending.conv, pending.then + (module,), pending.dilation, pending.span)
            else:
                raise ValueError(f"sliding evaluation cannot handle {type(module).__name__} layers")
        if pending is None:
            raise ValueError("sliding evaluation: the branch has no convolution")
        layers.append(pending)
        self.layers = layers
        self.column_stride = dilation  # columns between a window's neighbouring output columns
        self.receptive_span = 1 + sum(layer.span - 1 for layer in layers)
        maps = torch.zeros(1, *window_shape)
        with torch.no_grad():  # the window's own output shape, (C, H, W_out)
            for layer in layers:
                maps = F.conv2d(maps, layer.conv.weight, layer.conv.bias, stride=layer.conv.stride)
        self.output_shape = tuple(maps.shape[1:])
        self.window = window_shape[-1]
        # the output columns of the window starting at 0, in the every-column map
        self.output_columns = torch.arange(self.output_shape[-1]) * self.column_stride

    def apply(self, layer: _Layer, inputs: torch.Tensor, one_column: bool = False) -> torch.Tensor:
        """The layer (conv + its elementwise layers) in the every-column form. ``one_column``: ``inputs``
        are exactly the ``span`` columns of one output column (taken densely: a dilated convolution
        on a tiny input is much slower than an undilated one)."""
        dilation = layer.dilation
        if one_column:
            inputs, dilation = inputs[..., ::dilation], 1
        outputs = _column_dilated_conv(inputs, layer.conv, dilation)
        for module in layer.then:
            # (in training mode a dropout mask is drawn per column of the every-column map, so the
            # windows that share a column share its mask: still dropout, not per-window dropout)
            outputs = module(outputs)
        return outputs


def _column_dilated_conv(inputs: torch.Tensor, conv: nn.Conv2d, dilation: int) -> torch.Tensor:
    """``conv`` with its column stride 1 and its columns dilated by ``dilation``, as ``dilation``
    undilated convolutions of the interleaved column phases stacked in the batch ("space to batch"):
    PyTorch's CPU kernels for dilated convolutions, the backward pass above all, are many times slower."""
    if dilation == 1:
        return F.conv2d(inputs, conv.weight, conv.bias, stride=(conv.stride[0], 1))
    batch, channels, height, length = inputs.shape
    padded = -(-length // dilation) * dilation
    phases = F.pad(inputs, (0, padded - length)).reshape(batch, channels, height, padded // dilation, dilation)
    phases = phases.permute(0, 4, 1, 2, 3).reshape(batch * dilation, channels, height, padded // dilation)
    outputs = F.conv2d(phases, conv.weight, conv.bias, stride=(conv.stride[0], 1))
    _, out_channels, out_height, out_length = outputs.shape
    outputs = outputs.reshape(batch, dilation, out_channels, out_height, out_length).permute(0, 2, 3, 4, 1)
    valid = length - (conv.kernel_size[1] - 1) * dilation  # the columns whose inputs all exist
    return outputs.reshape(batch, out_channels, out_height, out_length * dilation)[..., :valid]


def branch_at_every_window(convs: nn.Sequential, inputs: torch.Tensor, window: int,
                           head: Callable[[torch.Tensor], torch.Tensor] | None = None,
                           chunk: int = 1024) -> torch.Tensor:
    """``convs`` (flattened) on every window ``inputs[..., s : s + window]``, for all ``s`` at once.

    Differentiable: training code can run a branch over a whole stretch of input once and train on
    many windows of it (:mod:`agents.pretraining.train`); wrap inference in ``torch.no_grad``.

    Args:
        convs: a stack of convolutions (e.g. a branch of a trunk), in the mode it is in (eval: no dropout).
        inputs: ``(C, H, L)`` — e.g. a performance's spectrogram or a piece's score strip.
        window: the window width (columns) the branch was built for.
        head: applied to each chunk of flattened outputs (e.g. the branch's dense layer), so that
            the large flattened maps of a long input are never all held at once.
        chunk: windows computed per pass (bounds the memory of long inputs).

    Returns:
        ``(L - window + 1, features)``: row ``s`` equals ``convs(inputs[None, ..., s : s + window])[0]``
        (passed through ``head`` if given).
    """
    channels, height, length = inputs.shape
    form = _EveryColumnForm(convs, (channels, height, window))
    if length < window:
        raise ValueError(f"input of {length} columns is shorter than the window ({window})")
    n_windows = length - window + 1
    rows = []
    for first in range(0, n_windows, chunk):
        count = min(chunk, n_windows - first)
        maps = inputs[None, :, :, first : first + count + window - 1]
        for layer in form.layers:
            maps = form.apply(layer, maps)
        # window s's output column j is the every-column map's column s + j * stride
        columns = torch.arange(count)[:, None] + form.output_columns[None, :]
        picked = maps[0][:, :, columns]  # (C, H, count, W_out)
        flat = picked.permute(2, 0, 1, 3).reshape(count, -1)
        rows.append(flat if head is None else head(flat))
    return torch.cat(rows)


class StreamingBranch:
    """``convs`` on a window that slides one column per step, computing one new column per layer.

    :meth:`start` takes the first window; each :meth:`push` appends the next input column (the
    window drops its oldest) and returns the branch's output for the new window — what
    ``convs(window)`` gives, at a fraction of the cost. Inference only (no dropout, no gradients).

    Args:
        convs: the branch (as in :func:`branch_at_every_window`).
        window_shape: ``(C, H, W)`` of the window.
    """

    def __init__(self, convs: nn.Sequential, window_shape: tuple[int, int, int]):
        self.form = _EveryColumnForm(convs, window_shape)
        self.window_shape = tuple(window_shape)
        # Every layer keeps the last `span` columns of its input; the final map keeps enough columns
        # to hold the window's output columns (the newest final column may lie past the last one
        # a window reads, when the receptive field does not reach the window's right edge).
        self._final_keep = self.form.window - self.form.receptive_span + 1
        self._buffers: list[torch.Tensor] = []
        self._final: torch.Tensor | None = None

    @torch.no_grad()
    def start(self, window: torch.Tensor) -> torch.Tensor:
        """Begin with ``window`` (``(C, H, W)`` or ``(1, C, H, W)``); returns its flattened output."""
        window = window.reshape(self.window_shape)
        self._buffers = []
        maps = window[None]
        for layer in self.form.layers:  # each layer's input, as far as the next push needs it
            self._buffers.append(maps[..., maps.shape[-1] - layer.span + 1 :])
            maps = self.form.apply(layer, maps)
        self._final = maps[..., maps.shape[-1] - self._final_keep :]
        return self._output()

    @torch.no_grad()
    def push(self, column: torch.Tensor) -> torch.Tensor:
        """Slide by one: ``column`` (``(C, H)``, ``(C, H, 1)`` or ``(1, C, H, 1)``) is the new window's last
        column. Returns the flattened output for the new window."""
        if self._final is None:
            raise RuntimeError("StreamingBranch: call start(window) before push(column)")
        new = column.reshape(1, self.window_shape[0], self.window_shape[1], 1)
        for index, layer in enumerate(self.form.layers):
            buffered = torch.cat([self._buffers[index], new], dim=-1)  # the layer's last `span` input columns
            self._buffers[index] = buffered[..., 1:]
            new = self.form.apply(layer, buffered, one_column=True)
        self._final = torch.cat([self._final[..., 1:], new], dim=-1)
        return self._output()

    def _output(self) -> torch.Tensor:
        return self._final[..., self.form.output_columns].reshape(1, -1)


__all__ = ["StreamingBranch", "branch_at_every_window"]
