"""The cached aarch64 CPython userland that ``onnxruntime-arm64`` runs in: ``python -m vmf_deploy.arm64.userland``.

onnxruntime's aarch64 wheel needs an aarch64 CPython, which this x86-64 host runs under
``qemu-aarch64-static``. The userland is made from Debian and PyPI only, without a chroot:

1. ``debootstrap --arch=arm64 --foreign --variant=minbase --include=python3 bookworm ROOT`` downloads
   Debian's packages (signature and checksums checked by debootstrap) and unpacks the base system;
2. ``dpkg -x`` unpacks every downloaded ``.deb`` into ROOT (no maintainer scripts run);
3. the host's pip installs the aarch64 wheels of :data:`WHEELS` (hash-pinned) into ROOT's
   ``/usr/lib/python3/dist-packages`` (``--platform manylinux_2_28_aarch64 --python-version 3.11``);
4. ``ROOT/proc/cpuinfo`` and ``ROOT/sys/devices/system/cpu/{possible,present}`` describe an ARM CPU
   (:mod:`vmf_deploy.arm64.qemu`): without them ``import onnxruntime`` segfaults under qemu 7.2;
5. ``import numpy, onnxruntime`` runs once under qemu: it checks the result and leaves the
   compiled bytecode in ROOT, so later starts skip compiling under emulation.

It is built in a temp folder beside ROOT and renamed into place, with a stamp file
(:data:`STAMP_NAME`) recording what it was built from; a ROOT whose stamp differs from this
module's inputs is rebuilt. ROOT defaults to ``$VMF_CACHE/arm64-userland``, else
``~/.cache/vmf-deploy/arm64-userland``. Run it with::

    QEMU_LD_PREFIX=ROOT qemu-aarch64-static ROOT/usr/bin/python3.11 -c "import onnxruntime"
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

from .qemu import APT_PACKAGES, DEFAULT_CPU, QEMU_BINARY, missing_qemu_message, qemu_binary, write_cpu_files

SUITE = "bookworm"
DEBIAN_ARCH = "arm64"
DEBIAN_MIRROR = "http://deb.debian.org/debian"  # debootstrap's default mirror
PYTHON_VERSION = "3.11"  # bookworm's python3
WHEEL_PLATFORM = "manylinux_2_28_aarch64"  # glibc 2.28+; bookworm has 2.36
WHEELS: dict[str, tuple[str, str]] = {
    "onnxruntime": ("1.32.0", "2303372a85299b6757b0e11e1cbf13e410ddf7e10c37f4b37e99d1c90e7daf7c"),
    "numpy": ("2.4.6", "0ab0a9c4ffb1a6d95ef519fe4247dba8eb6b18ad93999f76b7f657039acabd47"),
}
"""Wheel → (version, sha256 of its cp311 manylinux_2_28_aarch64 wheel). onnxruntime is the version
``pyproject.toml`` pins for the host, so x86 and ARM run the same release."""
BUILD_STEPS = 1  # bump when the steps above change, so every cached userland is rebuilt
CACHE_ENV = "VMF_CACHE"
STAMP_NAME = "vmf-userland.json"
SITE_PACKAGES = Path("usr/lib/python3/dist-packages")  # on Debian python3's own sys.path


class UserlandError(RuntimeError):
    """The userland could not be built; the message names the missing tool or failed step and the fix."""


def default_root() -> Path:
    """``$VMF_CACHE/arm64-userland``, else ``~/.cache/vmf-deploy/arm64-userland``."""
    cache = os.environ.get(CACHE_ENV)
    base = Path(cache) if cache else Path.home() / ".cache" / "vmf-deploy"
    return base / "arm64-userland"


def python_path(root: Path) -> Path:
    """The userland's aarch64 interpreter."""
    return root / "usr" / "bin" / f"python{PYTHON_VERSION}"


def build_inputs(mirror: str = DEBIAN_MIRROR) -> dict:
    """Everything the userland is built from; a cached one with other inputs is rebuilt."""
    return {"suite": SUITE, "arch": DEBIAN_ARCH, "variant": "minbase", "include": ["python3"], "mirror": mirror,
            "wheel_platform": WHEEL_PLATFORM, "python": PYTHON_VERSION,
            "wheels": {name: {"version": v, "sha256": h} for name, (v, h) in WHEELS.items()}, "steps": BUILD_STEPS}


def read_stamp(root: Path) -> dict | None:
    """The stamp of a built userland (None if absent or unreadable)."""
    try:
        return json.loads((root / STAMP_NAME).read_text())
    except (OSError, json.JSONDecodeError):
        return None


def userland_problem(root: Path | None = None, mirror: str = DEBIAN_MIRROR) -> str | None:
    """Why ``root`` is not a usable userland of this module's inputs (None if it is)."""
    root = root or default_root()
    stamp = read_stamp(root)
    if stamp is None:
        return f"the aarch64 userland is not built ({root})"
    if stamp.get("inputs") != build_inputs(mirror):
        return f"the aarch64 userland at {root} was built from other inputs (stamp {STAMP_NAME})"
    if not python_path(root).is_file():
        return f"the aarch64 userland at {root} has no {python_path(root).name}"
    return None


def _debootstrap() -> str:
    found = shutil.which("debootstrap") or next((p for p in ("/usr/sbin/debootstrap", "/sbin/debootstrap")
                                                 if os.access(p, os.X_OK)), None)
    if found is None:
        raise UserlandError(f"debootstrap not found: install it with apt-get install -y {APT_PACKAGES}")
    return found


def check_tools() -> None:
    """Raise :class:`UserlandError` naming the apt command when a tool the build needs is missing."""
    _debootstrap()
    if qemu_binary() is None:
        raise UserlandError(missing_qemu_message())
    if shutil.which("dpkg") is None:
        raise UserlandError("dpkg not found: the userland is built with Debian's tools (apt-get install -y dpkg)")
    if os.geteuid() != 0:
        raise UserlandError("debootstrap needs root to create the device and ownership entries: run "
                            "python -m vmf_deploy.arm64.userland as root (or with sudo)")


def _run(cmd: list[str], what: str, log: Path, **kwargs: object) -> None:
    with open(log, "a") as out:
        out.write(f"$ {' '.join(cmd)}\n")
        out.flush()
        proc = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, check=False, **kwargs)
    if proc.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").strip().splitlines()[-15:])
        raise UserlandError(f"{what} failed (exit code {proc.returncode}; full log {log}):\n{tail}")


def _debootstrap_step(tmp: Path, mirror: str, log: Path) -> None:
    _run([_debootstrap(), f"--arch={DEBIAN_ARCH}", "--foreign", "--variant=minbase", "--include=python3", SUITE,
          str(tmp), mirror], f"debootstrap (is {mirror} reachable? pass --mirror to use another)", log)


def _unpack_debs(tmp: Path, log: Path) -> list[str]:
    """``dpkg -x`` every downloaded package into ``tmp``, then drop the ``.deb`` files; return ``name_version``s."""
    archives = tmp / "var" / "cache" / "apt" / "archives"
    debs = sorted(archives.glob("*.deb"))
    if not debs:
        raise UserlandError(f"debootstrap downloaded no packages into {archives}; see {log}")
    for deb in debs:
        _run(["dpkg", "-x", str(deb), str(tmp)], f"dpkg -x {deb.name}", log)
        deb.unlink()
    return [deb.name.removesuffix(".deb") for deb in debs]


def _install_wheels(tmp: Path, log: Path) -> None:
    site = tmp / SITE_PACKAGES
    site.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="vmf-arm64-wheels-") as work:
        requirements = Path(work) / "requirements.txt"
        requirements.write_text("".join(f"{name}=={version} --hash=sha256:{digest}\n"
                                        for name, (version, digest) in WHEELS.items()))
        _run([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-deps",
              "--require-hashes", "--only-binary=:all:", "--platform", WHEEL_PLATFORM, "--python-version",
              PYTHON_VERSION, "--implementation", "cp", "--target", str(site), "-r", str(requirements)],
             "pip install of the aarch64 wheels", log, cwd=work)


def _smoke_test(tmp: Path, log: Path) -> None:
    """Import numpy and onnxruntime under qemu; check their versions (and leave their bytecode compiled)."""
    code = "import numpy, onnxruntime; print(numpy.__version__, onnxruntime.__version__)"
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "QEMU_LD_PREFIX": str(tmp), "QEMU_CPU": DEFAULT_CPU}
    proc = subprocess.run([str(qemu_binary()), str(python_path(tmp)), "-I", "-c", code], capture_output=True,
                          text=True, env=env, timeout=600, check=False)
    with open(log, "a") as out:
        out.write(f"$ import check under qemu: exit {proc.returncode}\n{proc.stdout}{proc.stderr}\n")
    expected = f"{WHEELS['numpy'][0]} {WHEELS['onnxruntime'][0]}"
    if proc.returncode != 0 or proc.stdout.strip() != expected:
        raise UserlandError(f"the new userland cannot import numpy + onnxruntime under {QEMU_BINARY} (exit code "
                            f"{proc.returncode}; got {proc.stdout.strip()!r}, expected {expected!r}); see {log}")


@contextmanager
def _build_lock(root: Path) -> Iterator[None]:
    """Hold an exclusive lock beside ``root`` so that concurrent builders wait for one build."""
    root.parent.mkdir(parents=True, exist_ok=True)
    with open(root.parent / f".{root.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def build_userland(root: Path | None = None, mirror: str = DEBIAN_MIRROR, force: bool = False,
                   progress=print) -> Path:  # noqa: ANN001 - a print-like callable
    """Build the userland at ``root`` (default :func:`default_root`) unless a current one is there; return ``root``.

    Raises:
        UserlandError: a tool is missing (the message names the apt command) or a step failed (with the log tail).
    """
    root = Path(root or default_root()).absolute()
    with _build_lock(root):
        if not force and userland_problem(root, mirror) is None:
            return root
        check_tools()
        for stale in [*root.parent.glob(f".{root.name}.build-*"), *root.parent.glob(f".{root.name}.old-*")]:
            shutil.rmtree(stale, ignore_errors=True)  # left by an interrupted build; the lock says none is running
        tmp = Path(tempfile.mkdtemp(prefix=f".{root.name}.build-", dir=root.parent))
        tmp.chmod(0o755)
        log = root.parent / f"{root.name}.build.log"
        log.write_text("")
        seconds: dict[str, float] = {}

        def timed(name: str, step):  # noqa: ANN001, ANN202 - a step callable and its result
            progress(f"arm64 userland: {name} ...")
            t0 = time.perf_counter()
            result = step()
            seconds[name] = round(time.perf_counter() - t0, 1)
            return result

        try:
            timed("debootstrap", lambda: _debootstrap_step(tmp, mirror, log))
            packages = timed("dpkg -x", lambda: _unpack_debs(tmp, log))
            timed("pip wheels", lambda: _install_wheels(tmp, log))
            timed("cpu files", lambda: write_cpu_files(tmp, DEFAULT_CPU))
            timed("import check", lambda: _smoke_test(tmp, log))
            stamp = {"inputs": build_inputs(mirror), "debian_packages": packages, "seconds": seconds,
                     "built": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}
            (tmp / STAMP_NAME).write_text(json.dumps(stamp, indent=2) + "\n")
            _replace(root, tmp)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return root


def _replace(root: Path, new: Path) -> None:
    """Rename ``new`` to ``root``, moving a stale ``root`` aside first and removing it after."""
    old = None
    if root.exists():
        old = root.parent / f".{root.name}.old-{os.getpid()}"
        os.replace(root, old)
    os.replace(new, root)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    """``python -m vmf_deploy.arm64.userland [--root DIR] [--mirror URL] [--force]``."""
    parser = argparse.ArgumentParser(prog="python -m vmf_deploy.arm64.userland", description=__doc__.split("\n")[0])
    parser.add_argument("--root", type=Path, default=None, help=f"where the userland goes (default {default_root()})")
    parser.add_argument("--mirror", default=DEBIAN_MIRROR, help="Debian mirror for debootstrap (default %(default)s)")
    parser.add_argument("--force", action="store_true", help="rebuild even if a current userland is there")
    args = parser.parse_args(argv)
    try:
        root = build_userland(args.root, args.mirror, args.force, progress=lambda s: print(s, file=sys.stderr))
    except UserlandError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    stamp = read_stamp(root) or {}
    print(f"{root} (built {stamp.get('built')}, {len(stamp.get('debian_packages', []))} Debian packages, "
          f"{', '.join(f'{n} {v}' for n, (v, _) in WHEELS.items())}, steps {stamp.get('seconds')})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
