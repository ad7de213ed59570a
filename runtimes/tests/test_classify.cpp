// softmax, top-k and label files.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "vmf/classify.h"
#include "vmf/error.h"

TEST(Classify, SoftmaxIsStableAndNormalised) {
  const std::vector<float> p = vmf::softmax({1000.0f, 1000.0f, 0.0f});
  EXPECT_FLOAT_EQ(p[0], 0.5f);
  EXPECT_FLOAT_EQ(p[1], 0.5f);
  EXPECT_FLOAT_EQ(p[2], 0.0f);
  const std::vector<float> q = vmf::softmax({1.0f, 2.0f, 3.0f});
  EXPECT_NEAR(q[2], std::exp(3.0) / (std::exp(1.0) + std::exp(2.0) + std::exp(3.0)), 1e-7);
  EXPECT_NEAR(q[0] + q[1] + q[2], 1.0, 1e-6);
  EXPECT_TRUE(vmf::softmax({}).empty());
}

TEST(Classify, TopKOrderAndTies) {
  EXPECT_EQ(vmf::top_k_indices({0.1f, 0.7f, 0.3f, 0.7f, 0.0f}, 3), (std::vector<int>{1, 3, 2}));
  EXPECT_EQ(vmf::top_k_indices({0.5f, 0.2f}, 5), (std::vector<int>{0, 1}));
  EXPECT_TRUE(vmf::top_k_indices({0.5f}, 0).empty());
}

TEST(Classify, TopKWithLabels) {
  const auto top = vmf::top_k({0.0f, 2.0f, 1.0f}, {"a", "b", "c"}, 2);
  ASSERT_EQ(top.size(), 2u);
  EXPECT_EQ(top[0].label, "b");
  EXPECT_EQ(top[0].index, 1);
  EXPECT_EQ(top[1].label, "c");
  EXPECT_GT(top[0].score, top[1].score);
  EXPECT_THROW(vmf::top_k({0.0f, 1.0f}, {"a", "b", "c"}, 2), vmf::Error);
}

TEST(Classify, LabelFile) {
  const auto path = std::filesystem::temp_directory_path() / "vmf_labels_test.txt";
  std::ofstream(path) << "abseiling\r\n  air drumming \n\nanswering questions\n";
  const auto labels = vmf::load_labels(path.string(), 3);
  EXPECT_EQ(labels, (std::vector<std::string>{"abseiling", "air drumming", "answering questions"}));
  try {
    vmf::load_labels(path.string(), 400);
    FAIL() << "a label count mismatch must be refused";
  } catch (const vmf::Error& e) {
    EXPECT_NE(std::string(e.what()).find("has 3 labels but the manifest says 400"), std::string::npos);
  }
  EXPECT_THROW(vmf::load_labels("/nonexistent/labels.txt", 3), vmf::Error);
  std::filesystem::remove(path);
}
