"""Configure and build the native runtime (``runtimes/``) with CMake against the executorch wheel.

``python -m vmf_deploy.native_build`` runs::

    cmake -S runtimes -B runtimes/build -DCMAKE_PREFIX_PATH=<executorch package dir> -DCMAKE_BUILD_TYPE=Release
    cmake --build runtimes/build -j <cores>

and prints where ``vmf_run`` is. The host needs CMake >= 3.19, a C++17 compiler, and the Debian
packages ``nlohmann-json3-dev`` and (for the C++ unit tests) ``libgtest-dev``.

``--arch aarch64`` cross-builds for 64-bit ARM Linux into ``runtimes/build-aarch64`` instead
(``vmf_deploy.cross_build``): the aarch64 executorch wheel of the host's executorch version is
pip-downloaded into a cache folder, hash-checked and unpacked there, and ``ctest`` runs the tests
under ``qemu-aarch64-static``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

RUNTIMES_DIR = Path(__file__).resolve().parents[1] / "runtimes"
DEFAULT_BUILD_DIR = RUNTIMES_DIR / "build"
VMF_RUN_ENV = "VMF_RUN"
"""Environment variable naming a ``vmf_run`` binary to use instead of ``runtimes/build/vmf_run``."""
ARCHES = ("host", "aarch64")


class NativeBuildError(RuntimeError):
    """The native runtime could not be configured or built; the message says why and what to install."""


def executorch_package_dir() -> Path:
    """The installed ``executorch`` package folder (it holds include/, lib/ and the CMake config)."""
    try:
        import executorch
    except ImportError:
        raise NativeBuildError("executorch is not installed: pip install 'vmf-deploy[export]'") from None
    for folder in map(Path, executorch.__path__):
        if (folder / "share" / "cmake" / "executorch-config.cmake").is_file():
            return folder
    raise NativeBuildError(f"the executorch package at {list(executorch.__path__)} ships no CMake config "
                           "(share/cmake/executorch-config.cmake); install executorch>=1.5 from PyPI")


def vmf_run_path(build_dir: str | os.PathLike | None = None) -> Path:
    """Where the ``vmf_run`` binary is (``$VMF_RUN`` if set, else ``<build_dir>/vmf_run``); it may not exist yet."""
    if build_dir is None and os.environ.get(VMF_RUN_ENV):
        return Path(os.environ[VMF_RUN_ENV])
    return Path(build_dir or DEFAULT_BUILD_DIR) / "vmf_run"


def cmake_configure_command(build_dir: Path, tests: bool = True, build_type: str = "Release",
                            cmake: str = "cmake", prefix: Path | None = None,
                            extra: tuple[str, ...] = ()) -> list[str]:
    """The ``cmake`` configure command line for ``runtimes/`` into ``build_dir`` (``prefix``: the executorch package)."""
    return [cmake, "-S", str(RUNTIMES_DIR), "-B", str(build_dir),
            f"-DCMAKE_PREFIX_PATH={prefix or executorch_package_dir()}",
            f"-DCMAKE_BUILD_TYPE={build_type}", f"-DVMF_BUILD_TESTS={'ON' if tests else 'OFF'}", *extra]


def run_step(cmd: list[str], what: str, hint: str = "The native runtime needs cmake, g++ and: apt-get install "
             "nlohmann-json3-dev libgtest-dev (or build with tests=False / --no-tests)") -> None:
    """Run one build step; NativeBuildError with the log tail and ``hint`` if it fails."""
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-25:])
        raise NativeBuildError(f"{what} failed ({' '.join(cmd)}):\n{tail}\n{hint}")


def build_runtime(build_dir: str | os.PathLike | None = None, tests: bool = True, jobs: int | None = None,
                  build_type: str = "Release", clean: bool = False, arch: str = "host") -> Path:
    """Configure and build ``runtimes/`` (incremental); return the path of the built ``vmf_run``.

    ``arch="aarch64"`` cross-builds for 64-bit ARM Linux (:func:`vmf_deploy.cross_build.build_aarch64`).

    Raises:
        NativeBuildError: cmake or a compiler is missing, or the configure/build step failed (with the log tail).
    """
    if arch not in ARCHES:
        raise NativeBuildError(f"unknown arch {arch!r}: choose one of {', '.join(ARCHES)}")
    if not (RUNTIMES_DIR / "CMakeLists.txt").is_file():
        raise NativeBuildError(f"{RUNTIMES_DIR} is missing: the native runtime builds from a source checkout of "
                               "vmf-deploy (pip install -e .)")
    if arch == "aarch64":
        from .cross_build import build_aarch64

        return build_aarch64(build_dir, tests=tests, jobs=jobs, build_type=build_type, clean=clean)
    for tool in ("cmake", "c++"):
        if shutil.which(tool) is None:
            raise NativeBuildError(f"{tool} not found: apt-get install cmake g++ make")
    build_dir = Path(build_dir or DEFAULT_BUILD_DIR)
    if clean and build_dir.exists():
        shutil.rmtree(build_dir)
    run_step(cmake_configure_command(build_dir, tests, build_type), "configuring runtimes/")
    run_step(["cmake", "--build", str(build_dir), "-j", str(jobs or os.cpu_count() or 2)], "building runtimes/")
    binary = build_dir / "vmf_run"
    if not binary.is_file():
        raise NativeBuildError(f"the build finished but {binary} is missing")
    return binary


def main(argv: list[str] | None = None) -> int:
    """``python -m vmf_deploy.native_build``: build runtimes/ and print the vmf_run path."""
    parser = argparse.ArgumentParser(prog="python -m vmf_deploy.native_build", description=__doc__.split("\n")[0])
    parser.add_argument("--build-dir", default=None,
                        help=f"build folder (default {DEFAULT_BUILD_DIR}, or runtimes/build-aarch64 for aarch64)")
    parser.add_argument("--arch", choices=ARCHES, default="host",
                        help="host (default), or aarch64: cross-build for 64-bit ARM Linux, tests run under qemu")
    parser.add_argument("--no-tests", action="store_true", help="skip the C++ unit tests (no GoogleTest needed)")
    parser.add_argument("--debug", action="store_true", help="CMAKE_BUILD_TYPE=Debug")
    parser.add_argument("--clean", action="store_true", help="remove the build folder first")
    parser.add_argument("-j", "--jobs", type=int, default=None, help="parallel build jobs (default: all cores)")
    args = parser.parse_args(argv)
    try:
        binary = build_runtime(args.build_dir, tests=not args.no_tests, jobs=args.jobs,
                               build_type="Debug" if args.debug else "Release", clean=args.clean, arch=args.arch)
    except NativeBuildError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(binary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
