#include "vmf/classify.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <numeric>

#include "vmf/error.h"

namespace vmf {

std::vector<std::string> load_labels(const std::string& path, int expected_count) {
  std::ifstream in(path);
  if (!in) throw Error("label file " + path + " not found; vmf-export writes it beside the manifest");
  std::vector<std::string> labels;
  std::string line;
  while (std::getline(in, line)) {
    const auto first = line.find_first_not_of(" \t\r");
    if (first == std::string::npos) continue;
    const auto last = line.find_last_not_of(" \t\r");
    labels.push_back(line.substr(first, last - first + 1));
  }
  if (int(labels.size()) != expected_count) {
    throw Error("label file " + path + " has " + std::to_string(labels.size()) + " labels but the manifest says " +
                std::to_string(expected_count) + "; re-export the artifact or restore the label file");
  }
  return labels;
}

std::vector<float> softmax(const std::vector<float>& logits) {
  if (logits.empty()) return {};
  const double peak = *std::max_element(logits.begin(), logits.end());
  std::vector<double> e(logits.size());
  double sum = 0.0;
  for (size_t i = 0; i < logits.size(); ++i) sum += (e[i] = std::exp(double(logits[i]) - peak));
  std::vector<float> out(logits.size());
  for (size_t i = 0; i < logits.size(); ++i) out[i] = float(e[i] / sum);
  return out;
}

std::vector<int> top_k_indices(const std::vector<float>& values, int k) {
  std::vector<int> idx(values.size());
  std::iota(idx.begin(), idx.end(), 0);
  k = std::max(0, std::min<int>(k, int(idx.size())));
  std::partial_sort(idx.begin(), idx.begin() + k, idx.end(), [&](int a, int b) {
    return values[a] > values[b] || (values[a] == values[b] && a < b);
  });
  idx.resize(k);
  return idx;
}

std::vector<Prediction> top_k(const std::vector<float>& logits, const std::vector<std::string>& labels, int k) {
  if (logits.size() != labels.size()) {
    throw Error("the model returned " + std::to_string(logits.size()) + " scores for " +
                std::to_string(labels.size()) + " labels: the manifest does not belong to this model");
  }
  const std::vector<float> probs = softmax(logits);
  std::vector<Prediction> out;
  for (int i : top_k_indices(probs, k)) out.push_back({i, labels[i], probs[i]});
  return out;
}

}  // namespace vmf
