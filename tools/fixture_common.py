"""Shared by the tools that make framework fixtures (make_opennmt_fixtures.py,
make_joeynmt_fixtures.py)."""
from __future__ import annotations

import subprocess
import sys


def run_command(command, env=None, cwd=None):
    """Run a framework command; on failure show the end of its output and stop."""
    result = subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True)
    if result.returncode:
        sys.stderr.write(result.stdout[-4000:] + result.stderr[-4000:])
        raise SystemExit(f"failed: {' '.join(command)}")
    return result
