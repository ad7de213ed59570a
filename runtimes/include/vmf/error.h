// The one exception type of the vmf runtime: every message names the problem and the fix.
#pragma once

#include <stdexcept>
#include <string>

namespace vmf {

// Thrown for bad input (manifest, artifact, frames, tensors) and runtime failures.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

}  // namespace vmf
