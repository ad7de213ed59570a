// The artifact manifest (docs/manifest.md, schema "vmf-deploy/manifest" version 1), read-only.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace vmf {

constexpr const char* kManifestSchema = "vmf-deploy/manifest";
constexpr int kManifestSchemaVersion = 1;
constexpr const char* kManifestSuffix = ".manifest.json";

// How raw RGB frames become the model input: the manifest's "preprocessing" object.
struct PreprocessSpec {
  int frames = 0;
  int crop = 0;
  int short_side = 0;
  std::array<double, 3> mean{};
  std::array<double, 3> std_dev{};  // the manifest's "std"
  double scale = 0.0;
};

// The parts of a manifest the runtime and the apps use.
struct Manifest {
  std::string path;       // where it was read from (for messages); empty when parsed from text
  std::string directory;  // folder the label file and the artifact are resolved against
  std::string artifact_file;
  std::string artifact_format;  // "pte", "onnx", "mlpackage"
  std::string artifact_target;  // "executorch", "onnx", "coreml"
  std::string artifact_sha256;
  std::string precision;
  std::string variant;
  int64_t params = -1;  // model.params, -1 when absent
  int64_t flops = -1;   // model.flops (multiply-adds), -1 when absent
  std::string input_name;
  std::array<int64_t, 5> input_shape{};  // B, C, T, H, W
  std::vector<int64_t> output_shape;
  std::string labels_file;
  int labels_count = 0;
  PreprocessSpec preprocessing;

  // Number of float32 values in the model input.
  int64_t input_numel() const;
  // Path of the label file (labels.file resolved against `directory`).
  std::string labels_path() const;
  // Path of the artifact (artifact.file resolved against `directory`).
  std::string artifact_path() const;
};

// Parses and validates manifest JSON text; `source` names it in error messages and `directory`
// is where relative files are resolved. Throws vmf::Error naming the bad field and the fix.
Manifest parse_manifest(const std::string& json_text, const std::string& source, const std::string& directory);

// Reads and validates a manifest file.
Manifest load_manifest(const std::string& path);

// The manifest path of an artifact: "<artifact>.manifest.json".
std::string manifest_path_for(const std::string& artifact);

// Refuses (throws vmf::Error) an artifact whose sha256 differs from the manifest's.
void verify_artifact(const std::string& artifact, const Manifest& manifest);

}  // namespace vmf
