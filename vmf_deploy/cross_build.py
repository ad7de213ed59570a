"""Cross-build ``runtimes/`` for 64-bit ARM Linux and run it under ``qemu-aarch64-static``.

``python -m vmf_deploy.native_build --arch aarch64`` (or ``build_runtime(arch="aarch64")``):

1. pip-downloads the aarch64 executorch wheel of the host's executorch version into the cache
   folder (``$VMF_CACHE``, else ``~/.cache/vmf-deploy``; never the source tree), checks its sha256
   against :data:`EXECUTORCH_AARCH64_WHEELS` and unpacks its ``include/``, ``lib/`` and ``share/``;
2. configures ``runtimes/`` with ``runtimes/cmake/aarch64-linux-gnu.cmake`` (Debian's
   ``g++-aarch64-linux-gnu``; GoogleTest compiled from ``/usr/src/googletest``) using a CMake >= 3.28,
   which the wheel's CMake config needs (``pip install cmake``: Debian 12 has 3.25);
3. builds ``vmf_run`` and the GoogleTest suite into ``runtimes/build-aarch64``.

``ctest`` there runs the tests through ``qemu-aarch64-static`` (the toolchain's
``CMAKE_CROSSCOMPILING_EMULATOR``); :func:`qemu_env` sets ``QEMU_CPU`` (default ``cortex-a76``,
a phone core) unless the caller chose one.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from importlib import metadata
from pathlib import Path

from .native_build import RUNTIMES_DIR, NativeBuildError, cmake_configure_command, run_step

AARCH64_BUILD_DIR = RUNTIMES_DIR / "build-aarch64"
TOOLCHAIN_FILE = RUNTIMES_DIR / "cmake" / "aarch64-linux-gnu.cmake"
SYSROOT = Path("/usr/aarch64-linux-gnu")
"""Debian's aarch64 cross root (libc, libstdc++): qemu's ``-L`` and the toolchain's find root."""
GTEST_SOURCE_DIR = Path("/usr/src/googletest")
QEMU = "qemu-aarch64-static"
DEFAULT_QEMU_CPU = "cortex-a76"
QEMU_CPU_ENV = "VMF_QEMU_CPU"
"""Environment variable choosing the emulated CPU (``QEMU_CPU``) of the aarch64 runner; default cortex-a76."""
VMF_RUN_AARCH64_ENV = "VMF_RUN_AARCH64"
"""Environment variable naming an aarch64 ``vmf_run`` to use instead of ``runtimes/build-aarch64/vmf_run``."""
CACHE_ENV = "VMF_CACHE"
CMAKE_MIN = (3, 28)
CMAKE_PIN = "cmake==4.4.4"
WHEEL_PLATFORM = "manylinux_2_28_aarch64"
WHEEL_PYTHON = "3.11"
EXECUTORCH_AARCH64_WHEELS: dict[str, tuple[str, str]] = {
    "1.5.1": ("executorch-1.5.1-cp311-cp311-manylinux_2_28_aarch64.whl",
              "8ee02348a3ea80ddf770822911ebf78da616b73afce0fbaaa79f23311c88c66a"),
}
"""executorch version → (the cp311 aarch64 wheel's file name, its sha256). Only the C++ libraries and
headers are used, which do not depend on the Python version."""
WHEEL_PARTS = ("executorch/include/", "executorch/lib/", "executorch/share/")
APT_HINT = "apt-get install g++-aarch64-linux-gnu qemu-user-static libgtest-dev nlohmann-json3-dev"


def cache_dir() -> Path:
    """The download cache: ``$VMF_CACHE``, else ``$XDG_CACHE_HOME/vmf-deploy``, else ``~/.cache/vmf-deploy``."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "vmf-deploy"


def host_executorch_version() -> str:
    """The installed executorch's version without a local tag (``1.5.1`` for ``1.5.1+cpu``)."""
    try:
        return metadata.version("executorch").split("+")[0]
    except metadata.PackageNotFoundError:
        raise NativeBuildError("executorch is not installed: pip install 'vmf-deploy[export]' (the aarch64 build "
                               "uses the aarch64 wheel of the same version)") from None


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch_wheel(version: str, wheels: Path) -> Path:
    """The aarch64 executorch wheel of ``version`` in ``wheels`` (pip-downloaded if absent), hash-checked."""
    if version not in EXECUTORCH_AARCH64_WHEELS:
        raise NativeBuildError(f"no pinned aarch64 executorch wheel for executorch {version} (pinned: "
                               f"{', '.join(EXECUTORCH_AARCH64_WHEELS)}): add its name and sha256 to "
                               "EXECUTORCH_AARCH64_WHEELS in vmf_deploy/cross_build.py")
    name, expected = EXECUTORCH_AARCH64_WHEELS[version]
    wheel = wheels / name
    if not wheel.is_file():
        wheels.mkdir(parents=True, exist_ok=True)
        run_step([sys.executable, "-m", "pip", "download", "--quiet", f"executorch=={version}", "--platform",
                  WHEEL_PLATFORM, "--python-version", WHEEL_PYTHON, "--implementation", "cp", "--only-binary=:all:",
                  "--no-deps", "--dest", str(wheels)], f"downloading the aarch64 executorch {version} wheel",
                 hint="pip must reach PyPI (the wheel is about 18 MB); or put the wheel in " + str(wheels))
    actual = sha256_of(wheel)
    if actual != expected:
        wheel.unlink()
        raise NativeBuildError(f"{wheel} has sha256 {actual}, not the pinned {expected}: it was removed; "
                               "run again to download it afresh")
    return wheel


def executorch_aarch64_dir(version: str | None = None) -> Path:
    """The unpacked aarch64 executorch package (its ``include/``, ``lib/``, ``share/cmake``), made if absent."""
    version = version or host_executorch_version()
    root = cache_dir() / "aarch64"
    package = root / f"executorch-{version}" / "executorch"
    if (package / "share" / "cmake" / "executorch-config.cmake").is_file():
        return package
    wheel = fetch_wheel(version, root / "wheels")
    staging = Path(tempfile.mkdtemp(prefix=f".executorch-{version}-", dir=root))
    with zipfile.ZipFile(wheel) as zf:
        zf.extractall(staging, [m for m in zf.namelist() if m.startswith(WHEEL_PARTS)])
    for lib in (staging / "executorch" / "lib").iterdir():
        lib.chmod(0o755)
    target = package.parent
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)  # the unpacked folder appears whole or not at all
    return package


def cmake_version(cmake: str) -> tuple[int, ...] | None:
    """``(major, minor)`` of a cmake executable, None if it does not run."""
    try:
        out = subprocess.run([cmake, "--version"], capture_output=True, text=True, timeout=30, check=False).stdout
    except OSError:
        return None
    m = re.search(r"version (\d+)\.(\d+)", out)
    return (int(m.group(1)), int(m.group(2))) if m else None


def find_cmake() -> str:
    """A cmake >= 3.28: the one pip installed beside this Python, else the one on PATH."""
    candidates = [str(Path(sys.executable).parent / "cmake"), shutil.which("cmake")]
    found = []
    for cmake in filter(None, candidates):
        version = cmake_version(cmake)
        if version is not None and version >= CMAKE_MIN:
            return cmake
        if version is not None:
            found.append(f"{cmake} is {'.'.join(map(str, version))}")
    raise NativeBuildError(f"the aarch64 build needs CMake >= {'.'.join(map(str, CMAKE_MIN))} (the executorch "
                           f"wheel's CMake config needs it; {'; '.join(found) or 'no cmake found'}): "
                           f"pip install '{CMAKE_PIN}' (or pip install 'vmf-deploy[arm64]')")


def missing_cross_tools() -> list[str]:
    """What the cross build or qemu needs and this machine lacks, each with its install command."""
    missing = []
    if shutil.which("aarch64-linux-gnu-g++") is None:
        missing.append("aarch64-linux-gnu-g++ (apt-get install g++-aarch64-linux-gnu)")
    if shutil.which(QEMU) is None:
        missing.append(f"{QEMU} (apt-get install qemu-user-static)")
    return missing


def qemu_cpu() -> str:
    """The emulated CPU: ``$VMF_QEMU_CPU``, else ``$QEMU_CPU``, else cortex-a76."""
    return os.environ.get(QEMU_CPU_ENV) or os.environ.get("QEMU_CPU") or DEFAULT_QEMU_CPU


def qemu_env(cpu: str | None = None) -> dict[str, str]:
    """This process's environment with ``QEMU_CPU`` set for an aarch64 child."""
    return {**os.environ, "QEMU_CPU": cpu or qemu_cpu()}


def qemu_command(binary: Path) -> list[str]:
    """The command prefix that runs an aarch64 ``binary`` here."""
    return [QEMU, "-L", str(SYSROOT), str(binary)]


def vmf_run_aarch64_path(build_dir: str | os.PathLike | None = None) -> Path:
    """The aarch64 ``vmf_run`` (``$VMF_RUN_AARCH64`` if set, else ``<build_dir>/vmf_run``); it may not exist yet."""
    if build_dir is None and os.environ.get(VMF_RUN_AARCH64_ENV):
        return Path(os.environ[VMF_RUN_AARCH64_ENV])
    return Path(build_dir or AARCH64_BUILD_DIR) / "vmf_run"


def build_aarch64(build_dir: str | os.PathLike | None = None, tests: bool = True, jobs: int | None = None,
                  build_type: str = "Release", clean: bool = False) -> Path:
    """Cross-build ``vmf_run`` (and the GoogleTest suite) for aarch64; return the built ``vmf_run``.

    Raises:
        NativeBuildError: a tool is missing (the message names the apt/pip command), the wheel's hash
            differs from the pinned one, or a configure/build step failed (with its log tail).
    """
    missing = missing_cross_tools()
    if missing:
        raise NativeBuildError(f"the aarch64 build needs {', '.join(missing)}")
    if tests and not (GTEST_SOURCE_DIR / "googletest" / "CMakeLists.txt").is_file():
        raise NativeBuildError(f"{GTEST_SOURCE_DIR} is missing: apt-get install libgtest-dev (it ships GoogleTest's "
                               "sources, compiled here for aarch64), or build with tests=False / --no-tests")
    cmake = find_cmake()
    package = executorch_aarch64_dir()
    build_dir = Path(build_dir or AARCH64_BUILD_DIR)
    if clean and build_dir.exists():
        shutil.rmtree(build_dir)
    extra = (f"--toolchain={TOOLCHAIN_FILE}", f"-DVMF_GTEST_SOURCE_DIR={GTEST_SOURCE_DIR if tests else ''}")
    hint = f"The aarch64 build needs: {APT_HINT}; pip install '{CMAKE_PIN}'"
    run_step(cmake_configure_command(build_dir, tests, build_type, cmake=cmake, prefix=package, extra=extra),
             "configuring runtimes/ for aarch64", hint)
    targets = ["vmf_run", "vmf_core_tests"] if tests else ["vmf_run"]
    run_step([cmake, "--build", str(build_dir), "-j", str(jobs or os.cpu_count() or 2), "--target", *targets],
             "building runtimes/ for aarch64", hint)
    binary = build_dir / "vmf_run"
    if not binary.is_file():
        raise NativeBuildError(f"the build finished but {binary} is missing")
    return binary


def ctest_command(build_dir: str | os.PathLike | None = None) -> list[str]:
    """``ctest`` of the CMake that cross-builds (run it with :func:`qemu_env`)."""
    ctest = Path(find_cmake()).parent / "ctest"
    return [str(ctest) if ctest.exists() else "ctest", "--test-dir", str(build_dir or AARCH64_BUILD_DIR),
            "--output-on-failure"]
