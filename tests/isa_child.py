"""Code run in a fresh interpreter on a chosen instruction set: the engine picks its
kernels once per process (RNNSEARCH_ISA: portable, avx2, ...; "" or "native": this CPU's
best), so a test of another instruction set needs a process of its own. A crash there
fails the test instead of killing the run."""
import os
import subprocess
import sys
import textwrap


def run_on_isa(code: str, isa: str = "", *args: str,
               timeout: int = 300) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    if isa and isa != "native":
        env["RNNSEARCH_ISA"] = isa
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code), *args], env=env,
                          capture_output=True, text=True, timeout=timeout)
