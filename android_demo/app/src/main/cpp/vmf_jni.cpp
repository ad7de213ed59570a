// JNI bridge: org.vmfdeploy.demo.VmfRuntime <-> runtimes/ (manifest, preprocessing, ExecuTorch
// runner, top-k, benchmark). No preprocessing constant lives here or in Kotlin: the manifest
// carries them and runtimes/ applies them.
#include <android/bitmap.h>
#include <jni.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "vmf/bench.h"
#include "vmf/benchmark.h"
#include "vmf/classify.h"
#include "vmf/error.h"
#include "vmf/manifest.h"
#include "vmf/model.h"
#include "vmf/preprocess.h"

namespace {

// One loaded model, its labels and the clip being filled.
struct Session {
  std::unique_ptr<vmf::Model> model;
  std::vector<std::string> labels;
  std::unique_ptr<vmf::ClipBuilder> clip;
  double preprocess_ms = 0;
  int threads = 0;
};

Session* session(jlong handle) { return reinterpret_cast<Session*>(handle); }

std::string to_string(JNIEnv* env, jstring s) {
  const char* chars = env->GetStringUTFChars(s, nullptr);
  std::string out(chars);
  env->ReleaseStringUTFChars(s, chars);
  return out;
}

void throw_java(JNIEnv* env, const char* what) {
  env->ThrowNew(env->FindClass("java/lang/IllegalStateException"), what);
}

// Runs `body`, turning a vmf::Error (or any std::exception) into a Java exception.
template <typename R, typename F>
R guarded(JNIEnv* env, R fallback, F&& body) {
  try {
    return body();
  } catch (const std::exception& e) {
    throw_java(env, e.what());
    return fallback;
  }
}

double ms_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

extern "C" {

JNIEXPORT jlong JNICALL Java_org_vmfdeploy_demo_VmfRuntime_nativeOpen(JNIEnv* env, jclass, jstring pte,
                                                                       jstring manifest, jint threads) {
  return guarded(env, jlong(0), [&] {
    auto s = std::make_unique<Session>();
    vmf::Manifest m = vmf::load_manifest(to_string(env, manifest));
    s->labels = vmf::load_labels(m.labels_path(), m.labels_count);
    vmf::ModelOptions options;
    options.threads = threads;
    s->threads = threads;
    s->model = std::make_unique<vmf::Model>(to_string(env, pte), std::move(m), options);
    return reinterpret_cast<jlong>(s.release());
  });
}

JNIEXPORT void JNICALL Java_org_vmfdeploy_demo_VmfRuntime_nativeClose(JNIEnv*, jclass, jlong handle) {
  delete session(handle);
}

JNIEXPORT jint JNICALL Java_org_vmfdeploy_demo_VmfRuntime_nativeClipFrames(JNIEnv*, jclass, jlong handle) {
  return session(handle)->model->manifest().preprocessing.frames;
}

JNIEXPORT jlongArray JNICALL Java_org_vmfdeploy_demo_VmfRuntime_nativeSampleIndices(JNIEnv* env, jclass,
                                                                                    jlong handle, jlong num_frames) {
  return guarded(env, jlongArray(nullptr), [&] {
    const auto idx = vmf::sample_indices(num_frames, session(handle)->model->manifest().preprocessing.frames);
    jlongArray out = env->NewLongArray(jsize(idx.size()));
    std::vector<jlong> values(idx.begin(), idx.end());
    env->SetLongArrayRegion(out, 0, jsize(values.size()), values.data());
    return out;
  });
}

JNIEXPORT void JNICALL Java_org_vmfdeploy_demo_VmfRuntime_nativeBeginClip(JNIEnv* env, jclass, jlong handle) {
  guarded(env, 0, [&] {
    Session* s = session(handle);
    s->clip = std::make_unique<vmf::ClipBuilder>(s->model->manifest().preprocessing);
    s->preprocess_ms = 0;
    return 0;
  });
}

// Preprocesses an ARGB_8888 Bitmap (RGBA bytes in memory) into time slot t of the current clip.
JNIEXPORT void JNICALL Java_org_vmfdeploy_demo_VmfRuntime_nativeSetFrame(JNIEnv* env, jclass, jlong handle, jint t,
                                                                         jobject bitmap) {
  guarded(env, 0, [&] {
    Session* s = session(handle);
    if (!s->clip) throw vmf::Error("call beginClip() before setFrame()");
    AndroidBitmapInfo info{};
    if (AndroidBitmap_getInfo(env, bitmap, &info) != ANDROID_BITMAP_RESULT_SUCCESS ||
        info.format != ANDROID_BITMAP_FORMAT_RGBA_8888) {
      throw vmf::Error("frames must be ARGB_8888 bitmaps");
    }
    void* pixels = nullptr;
    if (AndroidBitmap_lockPixels(env, bitmap, &pixels) != ANDROID_BITMAP_RESULT_SUCCESS) {
      throw vmf::Error("cannot lock the bitmap's pixels");
    }
    const auto start = std::chrono::steady_clock::now();
    try {
      s->clip->set_frame(t, vmf::FrameView{static_cast<const uint8_t*>(pixels), int(info.height), int(info.width),
                                           vmf::PixelFormat::kRGBA, info.stride});
    } catch (...) {
      AndroidBitmap_unlockPixels(env, bitmap);
      throw;
    }
    AndroidBitmap_unlockPixels(env, bitmap);
    s->preprocess_ms += ms_since(start);
    return 0;
  });
}

// Runs the model on the completed clip; returns {"top": [{index, label, score}], "preprocess_ms", "model_ms"}.
JNIEXPORT jstring JNICALL Java_org_vmfdeploy_demo_VmfRuntime_nativeClassify(JNIEnv* env, jclass, jlong handle,
                                                                            jint k) {
  return guarded(env, jstring(nullptr), [&] {
    Session* s = session(handle);
    if (!s->clip) throw vmf::Error("call beginClip() and setFrame() for every slot first");
    const auto start = std::chrono::steady_clock::now();
    const std::vector<float> logits = s->model->run(s->clip->tensor());
    const double model_ms = ms_since(start);
    nlohmann::json top = nlohmann::json::array();
    for (const auto& p : vmf::top_k(logits, s->labels, k)) {
      top.push_back({{"index", p.index}, {"label", p.label}, {"score", p.score}});
    }
    const nlohmann::json out = {{"top", top}, {"preprocess_ms", s->preprocess_ms}, {"model_ms", model_ms}};
    return env->NewStringUTF(out.dump().c_str());
  });
}

// Times the model (synthetic clip made by the manifest's preprocessing); returns the vmf-bench JSON.
JNIEXPORT jstring JNICALL Java_org_vmfdeploy_demo_VmfRuntime_nativeBenchmark(JNIEnv* env, jclass, jlong handle,
                                                                             jstring pte, jint warmup, jint runs,
                                                                             jlong artifact_size, jlong baseline_rss,
                                                                             jstring command) {
  return guarded(env, jstring(nullptr), [&] {
    Session* s = session(handle);
    const std::vector<float> input = vmf::benchmark_input(s->model->manifest().preprocessing);
    vmf::BenchRun run = vmf::benchmark_model(*s->model, input, warmup, runs, s->threads, baseline_rss);
    run.artifact_path = to_string(env, pte);
    run.artifact_size_bytes = artifact_size;
    run.command = to_string(env, command);
    return env->NewStringUTF(vmf::benchmark_report(*s->model, run).c_str());
  });
}

JNIEXPORT jlong JNICALL Java_org_vmfdeploy_demo_VmfRuntime_nativeCurrentRss(JNIEnv*, jclass) {
  return vmf::current_rss_bytes();
}

}  // extern "C"
