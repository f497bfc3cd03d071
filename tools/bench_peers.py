"""rnnsearch vs ONNX Runtime vs PyTorch eager on one model: identity check, timings and the
memory-bandwidth / sgemm floors. The implementation is rnnsearch.bench.peers (also
`rnnsearch bench --compare`); see its docstring.

    python tools/bench_peers.py              # small and nmt sizes, ~10 minutes on 2 cores
    python tools/bench_peers.py --quick      # a smoke run, well under a minute
    python tools/bench_peers.py --size nmt --repeat 7 --threads 1,2,4 --json out.json
"""
import os
import sys

# NumPy's BLAS reads these when it loads: one thread, so that the sgemm floor is one core's
for variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[variable] = "1"

from rnnsearch.bench.peers import main  # noqa: E402  (after the environment is set)

if __name__ == "__main__":
    sys.exit(main())
