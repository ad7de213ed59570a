"""The Android app's native half: its JNI bridge compiled and linked for aarch64 against the cross-built runtime.

``android_demo/app/src/main/cpp/vmf_jni.cpp`` with the JDK's ``jni.h`` and the NDK's bitmap API from
``linux_stubs/`` (glibc aarch64, not Android: no NDK here), linked with ``-Wl,--no-undefined``
against ``runtimes/build-aarch64``'s ``vmf_runtime`` and the aarch64 executorch wheel's libraries.
Every ``external fun`` of ``VmfRuntime.kt`` must be exported by the library.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from vmf_deploy.cross_build import executorch_aarch64_dir

REPO = Path(__file__).resolve().parents[1]
JNI_DIR = REPO / "android_demo" / "app" / "src" / "main" / "cpp"
KOTLIN = REPO / "android_demo" / "app" / "src" / "main" / "java" / "org" / "vmfdeploy" / "demo" / "VmfRuntime.kt"
EXECUTORCH_LIBS = ("executorch", "executorch_kernels_optimized", "executorch_backend_xnnpack", "executorch_threadpool")


def jdk_include() -> Path:
    """The include folder of the JDK that runs ``javac`` here."""
    javac = shutil.which("javac")
    if javac is None:
        pytest.skip("no JDK (apt-get install openjdk-17-jdk-headless)")
    include = Path(javac).resolve().parents[1] / "include"
    assert (include / "jni.h").is_file(), f"no jni.h under {include}"
    return include


def test_jni_bridge_links_for_aarch64_against_the_cross_built_runtime(aarch64_build_dir: Path,
                                                                      tmp_path: Path) -> None:
    include = jdk_include()
    (tmp_path / "inc").mkdir()
    (tmp_path / "inc" / "nlohmann").symlink_to("/usr/include/nlohmann")  # header-only; not all of /usr/include
    lib_dir = executorch_aarch64_dir() / "lib"
    library = tmp_path / "libvmf_jni.so"
    cmd = ["aarch64-linux-gnu-g++", "-std=c++17", "-O1", "-fPIC", "-shared", "-o", str(library),
           str(JNI_DIR / "vmf_jni.cpp"), str(JNI_DIR / "linux_stubs" / "bitmap_stub.cpp"),
           f"-I{REPO / 'runtimes' / 'include'}", f"-I{include}", f"-I{include / 'linux'}",
           f"-I{JNI_DIR / 'linux_stubs'}", f"-I{tmp_path / 'inc'}",
           str(aarch64_build_dir / "libvmf_runtime.a"), str(aarch64_build_dir / "libvmf_core.a"),
           f"-L{lib_dir}", *(f"-l{name}" for name in EXECUTORCH_LIBS), "-Wl,--no-undefined"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert int.from_bytes(library.read_bytes()[18:20], "little") == 183  # EM_AARCH64
    symbols = subprocess.run(["aarch64-linux-gnu-nm", "-D", "--defined-only", str(library)], capture_output=True,
                             text=True, check=True).stdout
    exported = set(re.findall(r"Java_org_vmfdeploy_demo_VmfRuntime_(\w+)", symbols))
    declared = set(re.findall(r"external fun (\w+)", KOTLIN.read_text()))
    assert declared and declared == exported
