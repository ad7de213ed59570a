// Manifest parsing: a valid manifest, and each kind of bad manifest refused with a named field.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <functional>

#include <nlohmann/json.hpp>

#include "vmf/error.h"
#include "vmf/manifest.h"

using nlohmann::json;

namespace {

json valid_manifest() {
  return json::parse(R"({
    "schema": "vmf-deploy/manifest", "schema_version": 1,
    "artifact": {"file": "m.pte", "format": "pte", "target": "executorch",
                 "sha256": "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
                 "size_bytes": 3, "precision": "fp32"},
    "model": {"variant": "560m", "config": {}, "params": 4714406, "flops": 139000000,
              "source": {"kind": "seeded-init", "seed": 0, "checkpoint": null, "checkpoint_sha256": null}},
    "input": {"name": "video", "shape": [1, 3, 16, 172, 172], "dtype": "float32", "layout": "NCTHW"},
    "output": {"name": "logits", "shape": [1, 400], "dtype": "float32", "meaning": "scores"},
    "labels": {"file": "kinetics400_labels.txt", "count": 400},
    "preprocessing": {"frames": 16, "crop": 172, "short_side": 172, "mean": [0.45, 0.45, 0.45],
                      "std": [0.225, 0.225, 0.225], "sampling": "uniform_whole_video",
                      "short_video": "repeat_frames_in_order", "interpolation": "bilinear_half_pixel",
                      "scale": 0.00392156862745098, "color": "RGB", "layout": "NCTHW"},
    "export": {}, "parity": {"status": "passed"}
  })");
}

// The message of the vmf::Error that parsing `doc` raises ("" if it parses).
std::string parse_error(const json& doc) {
  try {
    vmf::parse_manifest(doc.dump(), "m.pte.manifest.json", "/models");
  } catch (const vmf::Error& e) {
    return e.what();
  }
  return "";
}

void expect_refused(const std::function<void(json&)>& edit, const std::string& needle) {
  json doc = valid_manifest();
  edit(doc);
  const std::string msg = parse_error(doc);
  EXPECT_NE(msg.find(needle), std::string::npos) << "message was: " << msg;
}

}  // namespace

TEST(Manifest, ParsesAValidManifest) {
  const vmf::Manifest m = vmf::parse_manifest(valid_manifest().dump(), "src", "/models");
  EXPECT_EQ(m.artifact_file, "m.pte");
  EXPECT_EQ(m.artifact_format, "pte");
  EXPECT_EQ(m.variant, "560m");
  EXPECT_EQ(m.flops, 139000000);
  EXPECT_EQ(m.input_shape, (std::array<int64_t, 5>{1, 3, 16, 172, 172}));
  EXPECT_EQ(m.input_numel(), 3 * 16 * 172 * 172);
  EXPECT_EQ(m.labels_count, 400);
  EXPECT_EQ(m.labels_path(), "/models/kinetics400_labels.txt");
  EXPECT_EQ(m.artifact_path(), "/models/m.pte");
  EXPECT_EQ(m.preprocessing.frames, 16);
  EXPECT_EQ(m.preprocessing.crop, 172);
  EXPECT_DOUBLE_EQ(m.preprocessing.mean[1], 0.45);
  EXPECT_DOUBLE_EQ(m.preprocessing.std_dev[2], 0.225);
  EXPECT_DOUBLE_EQ(m.preprocessing.scale, 1.0 / 255.0);
}

TEST(Manifest, RefusesBadManifests) {
  EXPECT_NE(parse_error(json::parse("[1, 2]")).find("not a vmf-deploy manifest"), std::string::npos);
  expect_refused([](json& d) { d["schema"] = "other"; }, "not a vmf-deploy manifest");
  expect_refused([](json& d) { d["schema_version"] = 2; }, "schema_version 2; this runtime reads 1");
  expect_refused([](json& d) { d.erase("parity"); }, "parity is missing");
  expect_refused([](json& d) { d["artifact"].erase("sha256"); }, "artifact.sha256 is missing");
  expect_refused([](json& d) { d["artifact"]["sha256"] = "abc"; }, "artifact.sha256 must be 64");
  expect_refused([](json& d) { d["input"]["shape"] = {1, 3, 16, 172}; }, "input.shape must have 5 dims");
  expect_refused([](json& d) { d["input"]["shape"][2] = 0; }, "input.shape[2] must be a positive integer");
  expect_refused([](json& d) { d["input"]["shape"][2] = 8; }, "input.shape disagrees with preprocessing");
  expect_refused([](json& d) { d["input"]["layout"] = "NTHWC"; }, "input.layout is \"NTHWC\"");
  expect_refused([](json& d) { d["output"]["shape"] = {1, 10}; }, "output.shape must be [1, labels.count]");
  expect_refused([](json& d) { d["preprocessing"]["mean"] = {0.5, 0.5}; }, "preprocessing.mean must be a list of 3");
  expect_refused([](json& d) { d["preprocessing"]["std"][0] = 0; }, "preprocessing.std must be positive");
  expect_refused([](json& d) { d["preprocessing"]["frames"] = "16"; }, "preprocessing.frames must be a positive");
  expect_refused([](json& d) { d["preprocessing"]["interpolation"] = "nearest"; },
                 "preprocessing.interpolation is \"nearest\"; this runtime implements only \"bilinear_half_pixel\"");
  expect_refused([](json& d) { d["preprocessing"]["short_side"] = 100; }, "short_side is smaller than");
  expect_refused([](json& d) { d["labels"]["count"] = -1; }, "labels.count must be a positive integer");
}

TEST(Manifest, InvalidJsonAndMissingFile) {
  try {
    vmf::parse_manifest("{\"schema\": ", "broken.json", "");
    FAIL();
  } catch (const vmf::Error& e) {
    EXPECT_NE(std::string(e.what()).find("broken.json is not valid JSON"), std::string::npos);
  }
  try {
    vmf::load_manifest("/nonexistent/m.pte.manifest.json");
    FAIL();
  } catch (const vmf::Error& e) {
    EXPECT_NE(std::string(e.what()).find("not found"), std::string::npos);
  }
}

TEST(Manifest, LoadsFromFileAndVerifiesTheArtifact) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / "vmf_manifest_test";
  fs::create_directories(dir);
  std::ofstream(dir / "m.pte.manifest.json") << valid_manifest().dump();
  std::ofstream(dir / "m.pte", std::ios::binary) << "abc";  // sha256 = the manifest's
  const vmf::Manifest m = vmf::load_manifest((dir / "m.pte.manifest.json").string());
  EXPECT_EQ(m.directory, dir.string());
  EXPECT_EQ(vmf::manifest_path_for((dir / "m.pte").string()), (dir / "m.pte.manifest.json").string());
  EXPECT_NO_THROW(vmf::verify_artifact((dir / "m.pte").string(), m));
  std::ofstream(dir / "m.pte", std::ios::binary) << "abd";  // tampered
  try {
    vmf::verify_artifact((dir / "m.pte").string(), m);
    FAIL() << "a tampered artifact must be refused";
  } catch (const vmf::Error& e) {
    EXPECT_NE(std::string(e.what()).find("does not match its manifest"), std::string::npos);
  }
  EXPECT_THROW(vmf::verify_artifact((dir / "gone.pte").string(), m), vmf::Error);
  fs::remove_all(dir);
}
