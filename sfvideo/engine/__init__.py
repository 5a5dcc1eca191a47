"""Training and evaluation, as small explicit pieces.

* ``train.py`` - the orchestrator: :func:`~sfvideo.engine.train.train` turns a config into objects
  once (:func:`~sfvideo.engine.train.build_training`) and runs epochs, checkpoints and signals.
* ``loop.py`` - :func:`~sfvideo.engine.loop.train_one_epoch`, the step loop over explicit objects
  (:class:`~sfvideo.engine.loop.EpochOptions` holds what is not the model, loss, optimiser or data).
* ``evaluate.py`` - :func:`~sfvideo.engine.evaluate.evaluate` (validation), the multi-view test
  (``run_test``), metrics, ``test_results.json`` / ``predictions.csv``, ``predict_video``.
* ``determinism.py`` - seeds, RNG capture/restore, ``SeededDataset``, ``ResumableSampler``.
* ``train_state.py`` - what ``last.pth`` holds, writing it atomically, resuming from it.
* ``factories.py`` - the default model, dataset and mixup builders that ``train`` and ``run_test`` use.
* ``ema.py``, ``losses.py``, ``optim.py`` (AdamW, layer decay, warmup/cosine), ``distributed.py``.
"""
