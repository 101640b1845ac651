"""Accuracy of many pruned variants of one model.

Each candidate is a set of per-layer thresholds. The layers' magnitudes are read once per
population; each candidate's masked weights go into ``torch.func.functional_call``, so the
model itself is never modified. On a GPU the masked weights of a whole population are
stacked along a new leading axis and the model runs once over them under ``torch.vmap``
(one call per data batch rather than one per candidate); on a CPU, where the matrix
products dominate and batching them saves nothing, candidates run one after another.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.func import functional_call

from olmp.data.registry import Split
from olmp.pruning.layers import PrunableLayer
from olmp.pruning.masks import dense_tensor
from olmp.training import model_device, prefers_channels_last, to_channels_last


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
        batch_size: samples per forward pass; ``population_chunk``: candidates per pass.
    """

    def __init__(
        self,
        model: nn.Module,
        layers: list[PrunableLayer],
        data: Split,
        *,
        prune_biases: bool = False,
        batched: bool | None = None,
        batch_size: int = 1000,
        population_chunk: int = 16,
    ) -> None:
        self.model = model
        self.layers = layers
        device = model_device(model)
        self.batched = device.type != "cpu" if batched is None else batched
        self.population_chunk = population_chunk
        # Convolutional networks on a CPU run about twice as fast on channels-last images
        # (LeNet-5: 520 -> 230 ms per 1,000 images); vmap does not keep that layout.
        self.channels_last = prefers_channels_last(model) and not self.batched
        self.batches = [
            (
                self._layout(data.x[i : i + batch_size].to(device)),
                data.y[i : i + batch_size].to(device),
            )
            for i in range(0, len(data), batch_size)
        ]
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

    def _layout(self, tensor: torch.Tensor) -> torch.Tensor:
        """Images and convolution kernels channels-last when that is faster (see above)."""
        return to_channels_last(tensor) if self.channels_last else tensor

    def _masked_tensors(self, thresholds: torch.Tensor) -> dict[str, torch.Tensor]:
        """State-dict name -> stacked masked tensor of shape (P, *shape)."""
        stacked: dict[str, torch.Tensor] = {}
        for index, layer in enumerate(self.layers):
            for name in (layer.weight_name, layer.bias_name):
                if name not in self.tensors:
                    continue
                w, magnitude = self.tensors[name]
                t = thresholds[:, index].to(w.device).view(-1, *([1] * w.ndim))
                stacked[name] = w.unsqueeze(0) * (magnitude.unsqueeze(0) >= t)
        return stacked

    @torch.inference_mode()
    def accuracies(self, thresholds: torch.Tensor) -> np.ndarray:
        """Accuracy of each candidate; ``thresholds`` has shape (P, number of layers)."""
        self.model.eval()
        results = []
        for start in range(0, len(thresholds), self.population_chunk):
            stacked = self._masked_tensors(thresholds[start : start + self.population_chunk])
            results.append(self._chunk_correct(stacked))
        return torch.cat(results).double().numpy() / self.n_samples

    def _chunk_correct(self, stacked: dict[str, torch.Tensor]) -> torch.Tensor:
        population = next(iter(stacked.values())).shape[0]
        correct = torch.zeros(population, dtype=torch.long)
        if self.batched:

            def predict(params: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
                return functional_call(self.model, params, (x,)).argmax(dim=-1)

            batched_predict = torch.vmap(predict, in_dims=(0, None))
            for x, y in self.batches:
                correct += (batched_predict(stacked, x) == y).sum(dim=1).cpu()
        else:
            for p in range(population):
                params = {name: self._layout(t[p]) for name, t in stacked.items()}
                for x, y in self.batches:
                    predicted = functional_call(self.model, params, (x,)).argmax(dim=-1)
                    correct[p] += int((predicted == y).sum())
        return correct
