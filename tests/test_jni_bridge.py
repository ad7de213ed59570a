"""The Android app's native half: its JNI bridge linked for aarch64, and run in a host JVM on x86.

``android_demo/app/src/main/cpp/vmf_jni.cpp`` with the JDK's ``jni.h`` and the NDK's bitmap API from
``linux_stubs/`` (glibc aarch64, not Android: no NDK here), linked with ``-Wl,--no-undefined``
against ``runtimes/build-aarch64``'s ``vmf_runtime`` and the aarch64 executorch wheel's libraries.
Every ``external fun`` of ``VmfRuntime.kt`` must be exported by the library.

On x86 the same ``vmf_jni.cpp`` is built against the native runtime with ``tests/jni_host/``'s
bitmap API over a Java ``HostBitmap`` (RGBA bytes: what ``android.graphics.Bitmap`` is on a
phone), loaded by a JVM through ``System.load`` and driven as the app drives it: sample, begin a
clip, set every frame, classify. Its top-5 must be the Python pipeline's on the same frames.
"""

from __future__ import annotations

import json
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
JNI_HOST = REPO / "tests" / "jni_host"


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


def _host_bridge(build_dir: Path, out: Path) -> Path:
    """``vmf_jni.cpp`` + the host bitmap API, built for x86 against ``build_dir``'s runtime and the executorch wheel."""
    from vmf_deploy.native_build import executorch_package_dir

    include = jdk_include()
    (out / "inc").mkdir()
    (out / "inc" / "nlohmann").symlink_to("/usr/include/nlohmann")
    lib_dir = executorch_package_dir() / "lib"
    library = out / "libvmf_jni.so"
    cmd = ["g++", "-std=c++17", "-O1", "-fPIC", "-shared", "-o", str(library),
           str(JNI_DIR / "vmf_jni.cpp"), str(JNI_HOST / "host_bitmap.cpp"),
           f"-I{REPO / 'runtimes' / 'include'}", f"-I{include}", f"-I{include / 'linux'}",
           f"-I{JNI_DIR / 'linux_stubs'}", f"-I{out / 'inc'}",
           str(build_dir / "libvmf_runtime.a"), str(build_dir / "libvmf_core.a"), f"-L{lib_dir}",
           "-Wl,--no-as-needed", *(f"-l{name}" for name in EXECUTORCH_LIBS), "-Wl,--as-needed",  # registrations
           "-Wl,--no-undefined", f"-Wl,-rpath,{lib_dir}"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return library


def test_jni_bridge_runs_in_a_host_jvm_as_the_app_drives_it(native_build_dir: Path, trained_export,
                                                            tmp_path: Path) -> None:
    import numpy as np

    from vmf_deploy.preprocess import PreprocessSpec, preprocess_video
    from vmf_deploy.runners import get_runner

    java = shutil.which("java")
    if java is None:
        pytest.skip("no JDK (apt-get install openjdk-17-jdk-headless)")
    library = _host_bridge(native_build_dir, tmp_path)
    classes = tmp_path / "classes"
    sources = sorted(str(p) for p in JNI_HOST.rglob("*.java"))
    subprocess.run(["javac", "-d", str(classes), *sources], check=True, capture_output=True, timeout=300)

    result = trained_export("executorch")
    frames_dir = tmp_path / "frames"
    frames_dir.mkdir()
    rng = np.random.default_rng(3)
    frames = [rng.integers(0, 256, (64, 80, 4), dtype=np.uint8) for _ in range(21)]  # RGBA, as a Bitmap holds
    for i, frame in enumerate(frames):
        (frames_dir / f"frame-{i}.rgba").write_bytes(frame.tobytes())
    (frames_dir / "size.txt").write_text("80 64")
    manifest = result.artifact.with_name(result.artifact.name + ".manifest.json")
    proc = subprocess.run([java, "-cp", str(classes), "org.vmfdeploy.demo.VmfRuntime", str(library),
                           str(result.artifact), str(manifest), str(frames_dir), str(len(frames))],
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert lines[0] == {"error": "call beginClip() before setFrame()"}  # a Java exception, not a crash
    spec = PreprocessSpec.from_dict(result.manifest["preprocessing"])
    assert lines[1]["clip_frames"] == spec.frames and len(lines[1]["sample"]) == spec.frames
    assert lines[3] == {"error": "frames must be ARGB_8888 bitmaps"} and lines[4]["rss_bytes"] > 0

    runner = get_runner("executorch-xnnpack")
    runner.load(result.artifact)
    logits = runner.run(preprocess_video(frames, spec))[0].astype(np.float64)
    runner.close()
    probs = np.exp(logits - logits.max())
    probs /= probs.sum()
    top = lines[2]["top"]
    assert [t["index"] for t in top] == list(np.argsort(-probs)[:5])
    assert max(abs(t["score"] - probs[t["index"]]) for t in top) <= 1e-4
    assert lines[2]["model_ms"] > 0 and lines[2]["preprocess_ms"] > 0
