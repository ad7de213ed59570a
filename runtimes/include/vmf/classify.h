// Labels and scores: the label file the manifest names, softmax, top-k.
#pragma once

#include <string>
#include <vector>

namespace vmf {

// One class of a prediction.
struct Prediction {
  int index = 0;
  std::string label;
  float score = 0.0f;  // softmax probability
};

// Reads a label file (one name per line, index = line; blank lines skipped); throws vmf::Error when
// it cannot be read or holds a number of labels other than `expected_count`.
std::vector<std::string> load_labels(const std::string& path, int expected_count);

// Numerically stable softmax (computed in double, returned as float).
std::vector<float> softmax(const std::vector<float>& logits);

// Indices of the k largest values, largest first; ties keep the lower index first.
std::vector<int> top_k_indices(const std::vector<float>& values, int k);

// Softmax + top-k with label names.
std::vector<Prediction> top_k(const std::vector<float>& logits, const std::vector<std::string>& labels, int k);

}  // namespace vmf
