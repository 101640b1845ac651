"""Accuracy of many pruned variants of one model.

Each candidate is a set of per-layer thresholds. The layers' magnitudes are read once per
population; each candidate's masked weights go into ``torch.func.functional_call``, so the
model itself is never modified. On a GPU the masked weights of a whole population are
stacked along a new leading axis and the model runs once over them under ``torch.vmap``
(one call per data batch rather than one per candidate); on a CPU, where the matrix
products dominate and batching them saves nothing, candidates run one after another.

On the one-at-a-time path the population still shares work where it can: when the first
prunable layer the data reaches is a Linear layer, its input is the same for every
candidate, and each candidate keeps a prefix of that layer's weights sorted by magnitude.
So its outputs for the whole population come from one pass over the weights the most
permissive candidate keeps — a dense product for the common part, sparse products for the
slices between candidates — and cumulative sums (:class:`SharedFirstLayer`).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import nn
from torch.func import functional_call

from olmp.data.registry import Split
from olmp.pruning.layers import PrunableLayer
from olmp.pruning.masks import dense_tensor
from olmp.training import model_device, prefers_channels_last, to_channels_last


class SharedFirstLayer:
    """The outputs of a population's first Linear layer, computed together.

    Candidate ``p`` keeps the weights with ``|w| >= t_p``: a prefix of the weights sorted
    by decreasing magnitude. Sorted by prefix length, each candidate's output is the
    previous one's plus the product with the slice of weights between them, so the whole
    population costs one product over the largest prefix instead of one per candidate.
    Slices above ``dense_fraction`` of the layer use a dense product, smaller ones a
    sparse one. Results match the per-candidate products up to float rounding.
    """

    def __init__(
        self,
        layer: PrunableLayer,
        inputs: list[torch.Tensor],
        bias: tuple[torch.Tensor, torch.Tensor] | None,
        dense_fraction: float = 0.12,
    ) -> None:
        self.layer = layer
        # The layer's input for each data batch, stored transposed, (in_features, N): a
        # sparse (out, in) @ dense (in, N) product is 3-6x faster with a contiguous
        # right-hand side than with the transposed view of an (N, in) batch.
        self.inputs_t = [x.T.contiguous() for x in inputs]
        weight = dense_tensor(layer, "weight").detach()
        self.shape = weight.shape
        self.flat = weight.flatten()
        magnitude = self.flat.abs()
        self.order = torch.argsort(magnitude, descending=True)
        self.rank = torch.empty_like(self.order)  # each weight's position in that order
        self.rank[self.order] = torch.arange(len(self.order), device=self.order.device)
        self.ascending = magnitude[self.order].flip(0).contiguous()
        self.bias = bias  # (bias, |bias|) when biases are pruned too
        self.plain_bias = None if layer.module.bias is None else layer.module.bias.detach()
        # Above this fraction of the layer a dense product beats a sparse one (measured on
        # one CPU core for LeNet-300-100's first layer: the two cross near 13 %).
        self.dense_fraction = dense_fraction

    def _slice_product(self, x_t: torch.Tensor, start: int, end: int) -> torch.Tensor:
        """(out_features, N): the product with the sorted weights ``start:end`` only."""
        out_features, in_features = self.shape
        if end - start > self.dense_fraction * self.flat.numel():
            part = self.flat * ((self.rank >= start) & (self.rank < end))
            return part.view(out_features, in_features) @ x_t
        index = self.order[start:end]
        coordinates = torch.stack([index // in_features, index % in_features])
        part = torch.sparse_coo_tensor(
            coordinates, self.flat[index], (out_features, in_features), check_invariants=False
        )
        return torch.sparse.mm(part, x_t)

    def outputs(self, thresholds: torch.Tensor) -> list[torch.Tensor]:
        """Per data batch, the layer's outputs for every candidate: (P, N, out_features),
        a transposed view of the (P, out_features, N) products."""
        thresholds = thresholds.to(self.ascending.device)  # the weights' device (a GPU's)
        kept = self.ascending.numel() - torch.searchsorted(self.ascending, thresholds.contiguous())
        by_size = torch.argsort(kept)
        biases = self._biases(thresholds)
        results = []
        for x_t in self.inputs_t:
            like = {"dtype": x_t.dtype, "device": x_t.device}
            out = torch.empty(len(thresholds), self.shape[0], x_t.shape[1], **like)
            running = torch.zeros(self.shape[0], x_t.shape[1], **like)
            start = 0
            for p in by_size.tolist():
                end = int(kept[p])
                if end > start:
                    running += self._slice_product(x_t, start, end)
                    start = end
                if biases is None:
                    out[p] = running
                else:
                    torch.add(running, biases[p].unsqueeze(1), out=out[p])
            results.append(out.transpose(1, 2))
        return results

    def _biases(self, thresholds: torch.Tensor) -> torch.Tensor | None:
        if self.bias is not None:
            bias, magnitude = self.bias
            return bias.unsqueeze(0) * (magnitude.unsqueeze(0) >= thresholds[:, None])
        if self.plain_bias is not None:
            return self.plain_bias.unsqueeze(0).expand(len(thresholds), -1)
        return None


class PopulationEvaluator:
    """Accuracy on ``data`` of ``model`` with each candidate's thresholds applied.

    Args:
        model: the network (plain, without masks applied), evaluated in eval mode.
        layers: the prunable layers the thresholds refer to, in order.
        data: the split to measure accuracy on (the tune split during the search).
        prune_biases: mask each layer's bias with the layer's threshold too.
        batched: evaluate a population with ``vmap`` (True) or one candidate at a time
            (False). ``None`` (the default) picks ``vmap`` on a GPU, where it saves a kernel
            launch per candidate, and one at a time on a CPU, where the work is
            arithmetic-bound either way and ``vmap`` over convolutions is about half as fast
            (``benchmarks/eval_speed.py``, BENCHMARKS.md).
        share_first_layer: on the one-at-a-time path, compute the first Linear layer's
            outputs for the whole population together (:class:`SharedFirstLayer`); turn it
            off to measure what evaluating each candidate alone costs.
        racing_z: when :meth:`accuracies` is given a floor, also stop scoring a candidate
            once the samples it has seen put its accuracy on the whole split more than
            ``racing_z`` standard errors above or below the floor (a sequential test; see
            :func:`racing_decided`). ``None``: stop only when the floor is out of reach
            for certain, so every feasibility decision is exact. Ignored (exact) when the
            first layer is shared, whose outputs are computed for every sample anyway.
        batch_size: samples per forward pass, and so per look of the tests that stop a
            candidate early (default 1,000; 250 when racing, for more looks);
            ``population_chunk``: candidates per pass.
    """

    def __init__(
        self,
        model: nn.Module,
        layers: list[PrunableLayer],
        data: Split,
        *,
        prune_biases: bool = False,
        batched: bool | None = None,
        share_first_layer: bool = True,
        racing_z: float | None = None,
        batch_size: int | None = None,
        population_chunk: int = 16,
    ) -> None:
        if racing_z is not None and not racing_z > 0:
            raise ValueError(f"racing_z must be positive or None, got {racing_z}")
        self.model = model
        self.layers = layers
        self.racing_z = racing_z
        device = model_device(model)
        self.batched = device.type != "cpu" if batched is None else batched
        self.population_chunk = population_chunk
        # Convolutional networks on a CPU run about twice as fast on channels-last images
        # (LeNet-5: 520 -> 230 ms per 1,000 images); vmap does not keep that layout.
        self.channels_last = prefers_channels_last(model) and not self.batched
        self.batches = self._batches(data, batch_size or 1000, device)
        self.n_samples = len(data)
        # The weights do not change while a population is evaluated: read them (and their
        # magnitudes) once, not once per generation.
        self.tensors: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        for layer in layers:
            attrs = ["weight"]
            if prune_biases and layer.bias_name is not None:
                attrs.append("bias")
            for attr in attrs:
                w = dense_tensor(layer, attr).detach()
                self.tensors[f"{layer.name}.{attr}"] = (w, w.abs())
        self.shared: SharedFirstLayer | None = None
        self.shared_index = -1
        if share_first_layer and not self.batched:
            self._share_first_layer()
        if self.shared is not None:
            # The shared first layer's outputs are computed for every sample up front, and
            # that layer is most of the work: stopping early would save little, so every
            # decision stays exact.
            self.racing_z = None
        elif racing_z is not None:
            # The sequential test treats the samples seen so far as a random draw from the
            # split; a fixed shuffle makes that true for splits stored sorted (by class,
            # say). The accuracy on the whole split does not depend on the order. Smaller
            # batches give the test more looks.
            order = torch.randperm(len(data), generator=torch.Generator().manual_seed(0))
            self.batches = self._batches(
                Split(data.x[order], data.y[order]), batch_size or 250, device
            )

    def _batches(
        self, data: Split, batch_size: int, device: torch.device
    ) -> list[tuple[torch.Tensor, torch.Tensor]]:
        return [
            (
                self._layout(data.x[i : i + batch_size].to(device)),
                data.y[i : i + batch_size].to(device),
            )
            for i in range(0, len(data), batch_size)
        ]

    @torch.inference_mode()
    def _share_first_layer(self) -> None:
        """Set up :class:`SharedFirstLayer` when the first prunable layer the data reach is
        a Linear layer fed a 2-D input (its input is then the same for every candidate)."""
        entered: list[tuple[PrunableLayer, torch.Tensor]] = []  # every call, in order

        def record(layer: PrunableLayer) -> Callable[..., None]:
            def hook(_: nn.Module, args: tuple) -> None:
                entered.append((layer, args[0]))

            return hook

        inputs = []
        for x, _ in self.batches:
            entered.clear()
            handles = [lay.module.register_forward_pre_hook(record(lay)) for lay in self.layers]
            try:
                self.model.eval()(x)
            finally:
                for handle in handles:
                    handle.remove()
            if not entered:  # no prunable layer runs in eval mode: nothing to share
                return
            layer, first_input = entered[0]
            # A layer called again (one Linear applied twice) takes other inputs the next
            # time, which its first input's outputs cannot answer for.
            again = sum(called is layer for called, _ in entered) > 1
            if again or not isinstance(layer.module, nn.Linear) or first_input.dim() != 2:
                return
            inputs.append(first_input.clone())
        self.shared = SharedFirstLayer(layer, inputs, self.tensors.get(f"{layer.name}.bias"))
        self.shared_index = self.layers.index(layer)
        if not self._shared_answers_alike():
            self.shared, self.shared_index = None, -1

    def _shared_answers_alike(self) -> bool:
        """Whether the shared outputs give the predictions of the masked model itself for a
        candidate pruning half of every layer: not so when the model uses a layer's weights
        where no hook sees them (``F.linear`` on them, say), before or inside the shared one."""
        assert self.shared is not None
        medians = [float(self.tensors[layer.weight_name][1].median()) for layer in self.layers]
        thresholds = torch.tensor([medians], dtype=torch.float64)
        x, _ = self.batches[0]
        index, self.shared_index = self.shared_index, -1  # every layer masked, the plain way
        whole = {name: self._layout(t[0]) for name, t in self._masked_tensors(thresholds).items()}
        self.shared_index = index
        plain = functional_call(self.model, whole, (x,)).argmax(dim=-1)
        rest = dict(whole)
        for attr in ("weight", "bias"):
            rest.pop(f"{self.shared.layer.name}.{attr}", None)
        shared = self._predict(rest, x, self.shared.outputs(thresholds[:, index])[0][0])
        # Sums in another order may flip a near tie; a wrong answer differs wholesale.
        return float((plain == shared).double().mean()) >= 0.99

    def _layout(self, tensor: torch.Tensor) -> torch.Tensor:
        """Images and convolution kernels channels-last when that is faster (see above)."""
        return to_channels_last(tensor) if self.channels_last else tensor

    def _masked_tensors(self, thresholds: torch.Tensor) -> dict[str, torch.Tensor]:
        """State-dict name -> stacked masked tensor of shape (P, *shape); the shared first
        layer (if any) is left out, its outputs are computed without them."""
        stacked: dict[str, torch.Tensor] = {}
        for index, layer in enumerate(self.layers):
            if index == self.shared_index:
                continue
            for name in (layer.weight_name, layer.bias_name):
                if name not in self.tensors:
                    continue
                w, magnitude = self.tensors[name]
                t = thresholds[:, index].to(w.device).view(-1, *([1] * w.ndim))
                stacked[name] = w.unsqueeze(0) * (magnitude.unsqueeze(0) >= t)
        return stacked

    @torch.inference_mode()
    def accuracies(self, thresholds: torch.Tensor, floor: float | None = None) -> np.ndarray:
        """Accuracy of each candidate; ``thresholds`` has shape (P, number of layers).

        With ``floor``, a candidate stops being evaluated as soon as its errors on the
        batches seen so far rule out an accuracy of at least ``floor`` on the whole split,
        and with ``racing_z`` also as soon as the sequential test decides it either way;
        its accuracy is then the fraction it got right on the samples it saw, which falls
        on the same side of ``floor``. Without ``racing_z`` whether a candidate reaches
        ``floor`` is decided exactly and only how far a failing one falls short is an
        estimate; with it, a decision is wrong only when the samples seen mislead by more
        than ``racing_z`` standard errors.
        """
        self.model.eval()
        correct, seen = [], []
        for start in range(0, len(thresholds), self.population_chunk):
            chunk = thresholds[start : start + self.population_chunk]
            c, n = self._chunk_counts(self._masked_tensors(chunk), chunk, floor)
            correct.append(c)
            seen.append(n)
        return (torch.cat(correct).double() / torch.cat(seen).double()).numpy()

    def _decided(
        self, correct: torch.Tensor, seen: torch.Tensor, floor: float | None
    ) -> torch.Tensor:
        """Which candidates need no more samples to tell whether they reach ``floor``."""
        if floor is None:
            return torch.zeros_like(seen, dtype=torch.bool)
        # More errors than this and the floor is out of reach for certain.
        certain = seen - correct > (1.0 - floor) * self.n_samples + 1e-6
        if self.racing_z is None:
            return certain
        return certain | racing_decided(correct, seen, self.n_samples, floor, self.racing_z)

    def _chunk_counts(
        self, stacked: dict[str, torch.Tensor], thresholds: torch.Tensor, floor: float | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Correct predictions and samples seen per candidate (see :meth:`accuracies`)."""
        population = len(thresholds)
        correct = torch.zeros(population, dtype=torch.long)
        seen = torch.zeros(population, dtype=torch.long)
        if self.batched:

            def predict(params: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
                return functional_call(self.model, params, (x,)).argmax(dim=-1)

            batched_predict = torch.vmap(predict, in_dims=(0, None))
            for x, y in self.batches:
                active = torch.nonzero(~self._decided(correct, seen, floor)).flatten()
                if len(active) == 0:
                    break
                on_device = active.to(y.device)
                params = {name: t[on_device] for name, t in stacked.items()}
                correct[active] += (batched_predict(params, x) == y).sum(dim=1).cpu()
                seen[active] += len(y)
            return correct, seen
        shared_outputs = None
        if self.shared is not None:
            shared_outputs = self.shared.outputs(thresholds[:, self.shared_index])
        for p in range(population):
            params = {name: self._layout(t[p]) for name, t in stacked.items()}
            for b, (x, y) in enumerate(self.batches):
                if self._decided(correct[p : p + 1], seen[p : p + 1], floor)[0]:
                    break
                shared = None if shared_outputs is None else shared_outputs[b][p]
                predicted = self._predict(params, x, shared)
                correct[p] += int((predicted == y).sum())
                seen[p] += len(y)
        return correct, seen

    def _predict(
        self, params: dict[str, torch.Tensor], x: torch.Tensor, shared: torch.Tensor | None
    ) -> torch.Tensor:
        """One candidate's predicted classes for batch ``x``; ``shared``: the shared first
        layer's output for it, answered in place of that layer's product."""
        if shared is None:
            return functional_call(self.model, params, (x,)).argmax(dim=-1)
        module = self.shared.layer.module
        module.forward = lambda *_: shared
        try:
            return functional_call(self.model, params, (x,)).argmax(dim=-1)
        finally:
            del module.forward


def racing_decided(
    correct: torch.Tensor, seen: torch.Tensor, total: int, floor: float, z: float
) -> torch.Tensor:
    """Whether each candidate's accuracy on the whole split (``total`` samples) is more
    than ``z`` standard errors above or below ``floor``, judged from the ``seen`` samples
    it got ``correct`` so far (a random draw from the split, taken without replacement).

    The standard error is that of the mean of ``seen`` draws without replacement,
    ``sqrt(p (1 - p) / seen * (total - seen) / (total - 1))``, with ``p`` smoothed as
    ``(correct + 1) / (seen + 2)`` so that a candidate with no errors yet is not certain.
    A candidate that has seen the whole split is always decided.
    """
    seen_f = seen.double().clamp(min=1)
    p = (correct.double() + 1) / (seen_f + 2)
    finite = (total - seen_f).clamp(min=0) / max(total - 1, 1)
    error = torch.sqrt(p * (1 - p) / seen_f * finite)
    estimate = correct.double() / seen_f
    started = seen > 0
    return started & ((estimate - z * error >= floor) | (estimate + z * error < floor))
