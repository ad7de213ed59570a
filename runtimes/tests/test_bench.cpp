// Benchmark statistics and the vmf-deploy/bench v1 document.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "vmf/bench.h"
#include "vmf/error.h"

TEST(Bench, LatencyStatsMatchNumpyAndTheBenchmarkApps) {
  const vmf::LatencyStats s = vmf::latency_stats({5, 1, 4, 2, 3, 10});
  EXPECT_DOUBLE_EQ(s.min, 1);
  EXPECT_DOUBLE_EQ(s.max, 10);
  EXPECT_DOUBLE_EQ(s.median, 3.5);        // numpy.median
  EXPECT_DOUBLE_EQ(s.p90, 7.5);           // numpy.percentile(x, 90): 5 + 0.5 * (10 - 5)
  EXPECT_DOUBLE_EQ(s.mean, 25.0 / 6);
  EXPECT_DOUBLE_EQ(s.trimmed_mean, 3.5);  // drops 1 and 10
  EXPECT_EQ(s.samples.size(), 6u);
  EXPECT_THROW(vmf::latency_stats({}), vmf::Error);
}

TEST(Bench, ReportHasTheSchemaFields) {
  vmf::Manifest m;
  m.variant = "560m";
  m.artifact_format = "pte";
  m.artifact_sha256 = std::string(64, 'a');
  m.input_shape = {1, 3, 16, 172, 172};
  m.flops = 2000000000;
  m.preprocessing.frames = 16;
  vmf::BenchRun run;
  run.artifact_path = "m.pte";
  run.artifact_size_bytes = 1 << 20;
  run.warmup = 1;
  run.runs = 3;
  run.load_ms = 12;
  run.samples_ms = {100, 200, 300};
  vmf::DeviceInfo device = vmf::describe_this_device();
  const auto doc = nlohmann::json::parse(vmf::bench_report_json(m, run, device));
  EXPECT_EQ(doc["schema"], "vmf-deploy/bench");
  EXPECT_EQ(doc["schema_version"], 1);
  const auto& r = doc["results"][0];
  EXPECT_EQ(r["status"], "ok");
  EXPECT_EQ(r["backend"], "executorch-native");
  EXPECT_EQ(r["variant"], "560m");
  EXPECT_DOUBLE_EQ(r["latency_ms"]["median"].get<double>(), 200);
  EXPECT_DOUBLE_EQ(r["clips_per_s"].get<double>(), 5);
  EXPECT_DOUBLE_EQ(r["gflops_per_s"].get<double>(), 10);
  EXPECT_TRUE(r["threads"].is_null());
  bool has_median_record = false;
  for (const auto& rec : doc["records"]) {
    EXPECT_EQ(rec["value"], rec["actualValue"]);
    if (rec["metric"] == "median_inference_latency(ms)") has_median_record = rec["value"] == 200.0;
  }
  EXPECT_TRUE(has_median_record);
  EXPECT_GE(doc["device"]["logical_cores"].get<int>(), 1);
}

TEST(Bench, SyntheticInputHasTheManifestShapeAndIsNormalised) {
  vmf::PreprocessSpec spec;
  spec.frames = 3;
  spec.crop = 8;
  spec.short_side = 10;
  spec.mean = {0.5, 0.5, 0.5};
  spec.std_dev = {0.5, 0.5, 0.5};
  spec.scale = 1.0 / 255.0;
  const std::vector<float> x = vmf::benchmark_input(spec);
  ASSERT_EQ(x.size(), 3u * 3 * 8 * 8);
  for (float v : x) {
    EXPECT_GE(v, -1.0f);
    EXPECT_LE(v, 1.0f);
  }
  EXPECT_EQ(x, vmf::benchmark_input(spec));  // deterministic
}
