"""Benchmarks (above the engine): model throughput and memory (``models``), the FLOPs table
(``flops``), data-loader throughput (``loader``) and the training-step timer (``training``)."""
