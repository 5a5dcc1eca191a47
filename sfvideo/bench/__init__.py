"""Benchmarks (above the engine). Timing and memory: ``timing`` (step closures, interleaved
rounds, paired ratios) and ``memory`` (peak memory of a step, fresh processes). Benchmarks:
``models`` (sfvideo's video models against pytorchvideo's zoo, ``zoo``, in several runtimes),
``official`` (against the official SparseFormer code), ``training`` (``sfvideo train
--benchmark-steps``), ``loader`` (data-loader throughput and memory), ``timeline`` (whole-video
timeline accuracy and memory), ``gpu_export`` (the deployment path on a CUDA device) and
``flops`` (the FLOPs table). ``results`` writes their figures as data and makes the Markdown
tables from them."""
