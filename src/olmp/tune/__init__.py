"""Architecture and training hyper-parameter search (``olmp tune``), on the engine.

>>> from olmp.tune import TuneSpace, tune
>>> summary = tune("digits", "runs/t1", solver="tpe", budget=20, epochs=2)  # doctest: +SKIP
>>> summary["best_val_accuracy"], summary["best_checkpoint"]  # doctest: +SKIP

* :mod:`olmp.tune.space`: HyperNOMAD's variables as families a user fixes or narrows.
* :mod:`olmp.tune.blackbox`: one trial: build a ``tuned-cnn``, train on train, score val.
* :mod:`olmp.tune.mads`: MADS with an extended poll over the layer counts and optimiser.
* :mod:`olmp.tune.ensemble`: the other task, a weighted vote of scikit-learn models.
* :mod:`olmp.tune.run`: :func:`tune`, the record, the best checkpoint, the plot.
"""

from olmp.tune.blackbox import TuneObjective
from olmp.tune.run import tune
from olmp.tune.space import FAMILIES, TuneSpace, load_space

__all__ = ["FAMILIES", "TuneObjective", "TuneSpace", "load_space", "tune"]
