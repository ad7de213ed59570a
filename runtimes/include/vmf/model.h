// An exported .pte run through ExecuTorch's C++ Module API (XNNPACK and CPU kernels linked in).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "vmf/manifest.h"

namespace vmf {

struct ModelOptions {
  int threads = 0;             // ExecuTorch thread-pool size; 0 keeps ExecuTorch's default
  bool verify_sha256 = true;   // refuse an artifact whose hash differs from the manifest's
};

// One loaded program. Not thread-safe: call run() from one thread at a time.
class Model {
 public:
  // Verifies the artifact against the manifest, loads it and its "forward" method, and checks
  // that the program's input and output shapes are the manifest's. Throws vmf::Error.
  Model(const std::string& pte_path, Manifest manifest, const ModelOptions& options = {});
  ~Model();
  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;

  const Manifest& manifest() const { return manifest_; }
  // Milliseconds spent loading the program and its method (hash check excluded).
  double load_ms() const { return load_ms_; }
  // Runs one preprocessed clip (manifest input shape, NCTHW float32); returns the logits.
  std::vector<float> run(const std::vector<float>& input);

 private:
  struct Impl;
  Manifest manifest_;
  std::unique_ptr<Impl> impl_;
  double load_ms_ = 0.0;
};

// Names of the ExecuTorch backends registered in this process (e.g. "XnnpackBackend").
std::vector<std::string> registered_backends();

// The ExecuTorch version this runtime was built against.
std::string executorch_version();

// Resizes ExecuTorch's shared thread pool (no-op when threads <= 0); throws if it cannot.
void set_executorch_threads(int threads);

}  // namespace vmf
