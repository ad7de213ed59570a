#include "vmf/manifest.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "vmf/error.h"
#include "vmf/sha256.h"

namespace vmf {
namespace {

using nlohmann::json;

// Reads fields of one JSON object, naming "source: a.b.c" in every error.
class Fields {
 public:
  Fields(const json& object, std::string source, std::string prefix)
      : object_(object), source_(std::move(source)), prefix_(std::move(prefix)) {
    if (!object_.is_object()) fail(prefix_.empty() ? "top level" : prefix_, "must be a JSON object");
  }

  const json& get(const std::string& key) const {
    const auto it = object_.find(key);
    if (it == object_.end()) fail(name(key), "is missing");
    return *it;
  }
  Fields object(const std::string& key) const { return Fields(get(key), source_, name(key)); }
  std::string string(const std::string& key) const {
    const json& v = get(key);
    if (!v.is_string()) fail(name(key), "must be a string, got " + v.dump());
    return v.get<std::string>();
  }
  std::string string_or_empty(const std::string& key) const {
    const auto it = object_.find(key);
    return (it != object_.end() && it->is_string()) ? it->get<std::string>() : std::string();
  }
  void expect_string(const std::string& key, const std::string& expected, const std::string& hint) const {
    const std::string v = string(key);
    if (v != expected) fail(name(key), "is \"" + v + "\"; this runtime implements only \"" + expected + "\"" + hint);
  }
  int64_t positive_int(const std::string& key) const { return positive_int(get(key), name(key)); }
  int64_t int_or(const std::string& key, int64_t fallback) const {
    const auto it = object_.find(key);
    return (it != object_.end() && it->is_number_integer()) ? it->get<int64_t>() : fallback;
  }
  double number(const std::string& key) const {
    const json& v = get(key);
    if (!v.is_number()) fail(name(key), "must be a number, got " + v.dump());
    return v.get<double>();
  }
  std::vector<int64_t> shape(const std::string& key) const {
    const json& v = get(key);
    if (!v.is_array() || v.empty()) fail(name(key), "must be a non-empty list of positive ints, got " + v.dump());
    std::vector<int64_t> out;
    for (size_t i = 0; i < v.size(); ++i) out.push_back(positive_int(v[i], name(key) + "[" + std::to_string(i) + "]"));
    return out;
  }
  std::array<double, 3> triple(const std::string& key) const {
    const json& v = get(key);
    if (!v.is_array() || v.size() != 3 || !v[0].is_number() || !v[1].is_number() || !v[2].is_number()) {
      fail(name(key), "must be a list of 3 numbers (one per RGB channel), got " + v.dump());
    }
    return {v[0].get<double>(), v[1].get<double>(), v[2].get<double>()};
  }
  [[noreturn]] void fail(const std::string& field, const std::string& problem) const {
    throw Error(source_ + ": " + field + " " + problem + "; re-export the artifact with vmf-export");
  }

 private:
  std::string name(const std::string& key) const { return prefix_.empty() ? key : prefix_ + "." + key; }
  int64_t positive_int(const json& v, const std::string& field) const {
    if (!v.is_number_integer() || v.get<int64_t>() <= 0) fail(field, "must be a positive integer, got " + v.dump());
    return v.get<int64_t>();
  }

  const json& object_;
  std::string source_;
  std::string prefix_;
};

bool is_hex_digest(const std::string& s) {
  if (s.size() != 64) return false;
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

std::string join_path(const std::string& directory, const std::string& file) {
  if (directory.empty()) return file;
  return (std::filesystem::path(directory) / file).string();
}

}  // namespace

int64_t Manifest::input_numel() const {
  int64_t n = 1;
  for (int64_t d : input_shape) n *= d;
  return n;
}

std::string Manifest::labels_path() const { return join_path(directory, labels_file); }

std::string Manifest::artifact_path() const { return join_path(directory, artifact_file); }

Manifest parse_manifest(const std::string& json_text, const std::string& source, const std::string& directory) {
  json doc;
  try {
    doc = json::parse(json_text);
  } catch (const json::parse_error& e) {
    throw Error(source + " is not valid JSON (" + e.what() + "); it is written beside the artifact by vmf-export");
  }
  if (!doc.is_object() || doc.value("schema", json()) != kManifestSchema) {
    throw Error(source + " is not a vmf-deploy manifest (schema != \"" + kManifestSchema +
                "\"); pass the .manifest.json written beside the artifact by vmf-export");
  }
  const json version = doc.value("schema_version", json());
  if (version != kManifestSchemaVersion) {
    throw Error(source + " has schema_version " + version.dump() + "; this runtime reads " +
                std::to_string(kManifestSchemaVersion) + ": re-export the artifact with a matching vmf-export");
  }
  const Fields top(doc, source, "");
  for (const char* key : {"artifact", "model", "input", "output", "labels", "preprocessing", "export", "parity"}) {
    top.get(key);
  }

  Manifest m;
  m.directory = directory;
  const Fields artifact = top.object("artifact");
  m.artifact_file = artifact.string("file");
  m.artifact_format = artifact.string("format");
  m.artifact_target = artifact.string("target");
  m.artifact_sha256 = artifact.string("sha256");
  if (!is_hex_digest(m.artifact_sha256)) artifact.fail("artifact.sha256", "must be 64 lower-case hex digits");
  m.precision = artifact.string_or_empty("precision");
  const Fields model = top.object("model");
  m.variant = model.string_or_empty("variant");
  m.params = model.int_or("params", -1);
  m.flops = model.int_or("flops", -1);

  const Fields input = top.object("input");
  m.input_name = input.string("name");
  input.expect_string("dtype", "float32", "");
  input.expect_string("layout", "NCTHW", "");
  const std::vector<int64_t> shape = input.shape("shape");
  if (shape.size() != 5) input.fail("input.shape", "must have 5 dims (B, C, T, H, W)");
  std::copy(shape.begin(), shape.end(), m.input_shape.begin());

  const Fields output = top.object("output");
  m.output_shape = output.shape("shape");

  const Fields labels = top.object("labels");
  m.labels_file = labels.string("file");
  m.labels_count = int(labels.positive_int("count"));

  const Fields pre = top.object("preprocessing");
  PreprocessSpec& p = m.preprocessing;
  p.frames = int(pre.positive_int("frames"));
  p.crop = int(pre.positive_int("crop"));
  p.short_side = int(pre.positive_int("short_side"));
  p.mean = pre.triple("mean");
  p.std_dev = pre.triple("std");
  p.scale = pre.number("scale");
  for (double s : p.std_dev) {
    if (!(s > 0)) pre.fail("preprocessing.std", "must be positive");
  }
  if (!(p.scale > 0)) pre.fail("preprocessing.scale", "must be positive");
  pre.expect_string("sampling", "uniform_whole_video", "");
  pre.expect_string("short_video", "repeat_frames_in_order", "");
  pre.expect_string("interpolation", "bilinear_half_pixel", "");
  pre.expect_string("color", "RGB", "");
  pre.expect_string("layout", "NCTHW", "");
  if (p.short_side < p.crop) pre.fail("preprocessing.short_side", "is smaller than preprocessing.crop");

  const std::array<int64_t, 5> expected{1, 3, p.frames, p.crop, p.crop};
  if (m.input_shape != expected) {
    input.fail("input.shape", "disagrees with preprocessing (expected [1, 3, frames, crop, crop] = [1, 3, " +
                                  std::to_string(p.frames) + ", " + std::to_string(p.crop) + ", " +
                                  std::to_string(p.crop) + "])");
  }
  if (m.output_shape.size() != 2 || m.output_shape[0] != 1 || m.output_shape[1] != m.labels_count) {
    output.fail("output.shape", "must be [1, labels.count] = [1, " + std::to_string(m.labels_count) + "]");
  }
  return m;
}

Manifest load_manifest(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    throw Error("manifest " + path + " not found; vmf-export writes it beside the artifact as <artifact>" +
                kManifestSuffix);
  }
  std::ostringstream text;
  text << in.rdbuf();
  Manifest m = parse_manifest(text.str(), "manifest " + path, std::filesystem::path(path).parent_path().string());
  m.path = path;
  return m;
}

std::string manifest_path_for(const std::string& artifact) { return artifact + kManifestSuffix; }

void verify_artifact(const std::string& artifact, const Manifest& manifest) {
  std::error_code ec;
  if (!std::filesystem::exists(artifact, ec)) throw Error("artifact " + artifact + " not found");
  const std::string actual = artifact_sha256_hex(artifact);
  if (actual != manifest.artifact_sha256) {
    throw Error("artifact " + artifact + " does not match its manifest (sha256 " + actual.substr(0, 12) +
                "... != " + manifest.artifact_sha256.substr(0, 12) +
                "...): it was modified or belongs to another export; re-export it with vmf-export");
  }
}

}  // namespace vmf
