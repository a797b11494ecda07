// Errors. Bad user input (files, keys, flags) is an InputError: the CLI prints it and exits 2.
// Internal invariant violations use LINSPEC_CHECK and throw std::logic_error.
#pragma once
#include <sstream>
#include <stdexcept>
#include <string>

namespace linspec {

// A user-facing error: the message names the file and the key/tensor/line at fault.
class InputError : public std::runtime_error {
 public:
  explicit InputError(const std::string& msg) : std::runtime_error(msg) {}
};

namespace detail {
template <typename... Args>
std::string concat(Args&&... args) {
  std::ostringstream os;
  (os << ... << args);
  return os.str();
}
}  // namespace detail

template <typename... Args>
[[noreturn]] void throw_input_error(Args&&... args) {
  throw InputError(detail::concat(std::forward<Args>(args)...));
}

}  // namespace linspec

#define LINSPEC_CHECK(cond, ...)                                                               \
  do {                                                                                         \
    if (!(cond))                                                                               \
      throw std::logic_error(::linspec::detail::concat(__FILE__, ":", __LINE__, ": check '",    \
                                                       #cond, "' failed: ", ##__VA_ARGS__));   \
  } while (0)
