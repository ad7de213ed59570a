#include "vmf/model.h"

#include <chrono>

#include <executorch/extension/module/module.h>
#include <executorch/extension/tensor/tensor.h>
#include <executorch/runtime/backend/interface.h>

#include "vmf/error.h"

#ifdef ET_USE_THREADPOOL
// The wheel ships libexecutorch_threadpool but not its header; these two declarations are the
// public API of executorch/extension/threadpool/threadpool.h that this runtime uses.
namespace executorch::extension::threadpool {
class ThreadPool {
 public:
  size_t get_thread_count() const;
  bool _unsafe_reset_threadpool(uint32_t num_threads);
};
ThreadPool* get_threadpool();
}  // namespace executorch::extension::threadpool
#endif

#ifndef VMF_EXECUTORCH_VERSION
#define VMF_EXECUTORCH_VERSION "unknown"
#endif

namespace vmf {
namespace {

using executorch::extension::Module;
using EtError = executorch::runtime::Error;

std::string et_error(EtError e) {
  return std::string(executorch::runtime::to_string(e)) + " (0x" +
         [](unsigned v) {
           char buf[9];
           std::snprintf(buf, sizeof(buf), "%x", v);
           return std::string(buf);
         }(unsigned(e)) +
         ")";
}

std::string shape_str(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

template <typename Sizes>
std::vector<int64_t> to_vector(const Sizes& sizes) {
  return std::vector<int64_t>(sizes.begin(), sizes.end());
}

}  // namespace

struct Model::Impl {
  std::unique_ptr<Module> module;
};

Model::Model(const std::string& pte_path, Manifest manifest, const ModelOptions& options)
    : manifest_(std::move(manifest)), impl_(std::make_unique<Impl>()) {
  if (options.verify_sha256) verify_artifact(pte_path, manifest_);
  if (manifest_.artifact_format != "pte") {
    throw vmf::Error("manifest " + manifest_.path + " describes a ." + manifest_.artifact_format +
                     " artifact, not a .pte: pass the manifest written beside the .pte");
  }
  set_executorch_threads(options.threads);
  const auto start = std::chrono::steady_clock::now();
  impl_->module = std::make_unique<Module>(pte_path, Module::LoadMode::Mmap);
  if (const EtError e = impl_->module->load(); e != EtError::Ok) {
    throw vmf::Error("ExecuTorch could not load " + pte_path + ": " + et_error(e) +
                     "; is it a .pte written by vmf-export --target executorch?");
  }
  if (const EtError e = impl_->module->load_method("forward"); e != EtError::Ok) {
    std::string hint = "; the program may need a backend or operator this runtime lacks (registered backends:";
    for (const auto& b : registered_backends()) hint += " " + b;
    throw vmf::Error("ExecuTorch could not load method 'forward' of " + pte_path + ": " + et_error(e) + hint + ")");
  }
  load_ms_ = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();

  const auto meta = impl_->module->method_meta("forward");
  if (!meta.ok() || meta->num_inputs() != 1 || meta->num_outputs() < 1) {
    throw vmf::Error(pte_path + ": method 'forward' must take one tensor and return the logits");
  }
  const auto in = meta->input_tensor_meta(0);
  const std::vector<int64_t> want_in(manifest_.input_shape.begin(), manifest_.input_shape.end());
  if (!in.ok() || to_vector(in->sizes()) != want_in) {
    throw vmf::Error(pte_path + ": program input shape " + (in.ok() ? shape_str(to_vector(in->sizes())) : "?") +
                     " differs from the manifest's " + shape_str(want_in) + ": the manifest belongs to another export");
  }
  const auto out = meta->output_tensor_meta(0);
  if (!out.ok() || to_vector(out->sizes()) != manifest_.output_shape) {
    throw vmf::Error(pte_path + ": program output shape differs from the manifest's " +
                     shape_str(manifest_.output_shape) + ": the manifest belongs to another export");
  }
}

Model::~Model() = default;

std::vector<float> Model::run(const std::vector<float>& input) {
  if (int64_t(input.size()) != manifest_.input_numel()) {
    throw vmf::Error("input has " + std::to_string(input.size()) + " values; the model takes " +
                     shape_str(std::vector<int64_t>(manifest_.input_shape.begin(), manifest_.input_shape.end())) +
                     " = " + std::to_string(manifest_.input_numel()));
  }
  std::vector<executorch::aten::SizesType> sizes(manifest_.input_shape.begin(), manifest_.input_shape.end());
  // ExecuTorch does not write to inputs; from_blob only borrows the caller's buffer.
  auto tensor = executorch::extension::from_blob(const_cast<float*>(input.data()), sizes,
                                                 executorch::aten::ScalarType::Float);
  const auto result = impl_->module->forward(tensor);
  if (!result.ok()) throw vmf::Error("ExecuTorch forward failed: " + et_error(result.error()));
  const auto& value = result->at(0);
  if (!value.isTensor()) throw vmf::Error("the program's first output is not a tensor");
  const auto& logits = value.toTensor();
  if (logits.scalar_type() != executorch::aten::ScalarType::Float) {
    throw vmf::Error("the program's output is not float32");
  }
  const float* data = logits.const_data_ptr<float>();
  return std::vector<float>(data, data + logits.numel());
}

std::vector<std::string> registered_backends() {
  std::vector<std::string> names;
  const size_t n = executorch::runtime::get_num_registered_backends();
  for (size_t i = 0; i < n; ++i) {
    const auto name = executorch::runtime::get_backend_name(i);
    if (name.ok()) names.emplace_back(*name);
  }
  return names;
}

std::string executorch_version() { return VMF_EXECUTORCH_VERSION; }

void set_executorch_threads(int threads) {
  if (threads <= 0) return;
#ifdef ET_USE_THREADPOOL
  auto* pool = executorch::extension::threadpool::get_threadpool();
  if (pool == nullptr || !pool->_unsafe_reset_threadpool(uint32_t(threads))) {
    throw vmf::Error("could not resize ExecuTorch's thread pool to " + std::to_string(threads) + " threads");
  }
#else
  throw vmf::Error("this build has no ExecuTorch thread pool: --threads is unavailable");
#endif
}

}  // namespace vmf
