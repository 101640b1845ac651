"""Targeted black-box ℓ∞ attacks by derivative-free optimisation (``olmp attack``).

After Ughi, Abrol & Tanner's study of DFO algorithms for targeted black-box attacks: five
attacks (:data:`METHODS`: ``bobyqa``, the model-based block attack on any engine solver,
``square``, ``parsimonious``, ``genattack``, ``zo-fw``) that only see the output
probabilities through a query-counting :class:`Oracle`, compared by the fraction of
(image, target) pairs they win within a query budget under an ℓ∞ bound ε (pixel units).

>>> from olmp.attack import run_attack                              # doctest: +SKIP
>>> result = run_attack("ref.safetensors", method="square", eps=0.2, budget=3000,
...                     images=20, out="attacks/square")            # doctest: +SKIP
>>> result["success_rate"], result["median_queries"]                # doctest: +SKIP

* :mod:`olmp.attack.oracle`: the black box and the margin objective.
* :mod:`olmp.attack.methods`: the attacks by name, one module each.
* :mod:`olmp.attack.run`: one image (:func:`attack_image`), a dataset (:func:`run_attack`).
* :mod:`olmp.attack.summary`: curves, bootstrap tables, :func:`compare`.
"""

from olmp.attack.methods import METHODS, SUMMARIES
from olmp.attack.oracle import Oracle, margin
from olmp.attack.run import attack_image, run_attack
from olmp.attack.summary import compare, summarize

__all__ = [
    "METHODS",
    "SUMMARIES",
    "Oracle",
    "attack_image",
    "compare",
    "margin",
    "run_attack",
    "summarize",
]
