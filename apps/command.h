// Each subcommand lives in its own apps/cmd_<name>.cpp and registers itself through this table.
#pragma once
#include <CLI/CLI.hpp>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "core/device.h"
#include "core/dtype.h"
#include "core/error.h"

namespace linspec::apps {

// The `--device auto|cpu|cuda` of a command that loads a model (auto: CUDA when built and a GPU is visible; CUDA:
// this rank's GPU, local_rank mod visible). InputError (exit 2) naming the flag and what is missing otherwise.
inline Device device_flag(const std::string& value) {
  const Device d = resolve_device(value, "--device");
  if (d == Device::CUDA) select_local_gpu();
  return d;
}

// The `--weights f32|bf16|int8` of a command that decodes: the inference weight format of the model's projections
// and LM head (LlamaModel::set_inference_weights; int8 is the Q8 format). CLI11 has checked the value.
inline void add_weights_flag(CLI::App& sub, std::string& value) {
  sub.add_option("--weights", value,
                 "f32 | bf16 | int8: format of the projection and LM-head weights while decoding (bf16 reads half "
                 "the bytes per token, int8 (int8 per 32-weight block + f32 scale) 0.28×; greedy speculative output "
                 "equals greedy AR at the same weights)")
      ->check(CLI::IsMember({"f32", "bf16", "int8"}))
      ->capture_default_str();
}
// `--draft-weights` of a command that decodes speculatively (SpeculativeSetup::draft_weights).
inline void add_draft_weights_flag(CLI::App& sub, std::string& value) {
  sub.add_option("--draft-weights", value,
                 "f32 | bf16 | int8 | target: format of the draft's weights (heads' projections, the eagle layer and "
                 "its reduced head, a draft model); the output is the same whatever the draft reads")
      ->check(CLI::IsMember({"f32", "bf16", "int8", "target"}))
      ->capture_default_str();
}
inline DType weights_flag(const std::string& value) {
  return value == "bf16" ? DType::BF16 : value == "int8" ? DType::Q8 : DType::F32;
}

// The output check of every command that writes a file (convert, linearize, prepare, export): an existing output is
// refused without --force, and a dangling symlink counts as existing (the atomic rename would replace the link
// itself); the output may never be the input file (`input_flag` names its flag in the message).
inline void check_output_path(const std::string& out, bool force, const std::string& input = "",
                              const char* input_flag = "") {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (fs::exists(fs::symlink_status(out, ec)) && !force)
    throw_input_error(out, ": already exists", fs::is_symlink(fs::symlink_status(out, ec)) ? " (a symlink)" : "",
                      " (pass --force to replace it)");
  if (!input.empty() && fs::exists(out, ec) && fs::exists(input, ec) && fs::equivalent(out, input, ec))
    throw_input_error(out, ": the output is the ", input_flag, " file");
}

struct Command {
  std::string name;
  std::string help;
  // Adds options to `sub` and returns the action run when the subcommand is chosen (returns exit code).
  std::function<std::function<int()>(CLI::App& sub)> setup;
};

// Registration happens at static-initialisation time from each cmd_*.cpp.
std::vector<Command>& command_table();
struct RegisterCommand {
  explicit RegisterCommand(Command c) { command_table().push_back(std::move(c)); }
};

}  // namespace linspec::apps
