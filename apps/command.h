// Each subcommand lives in its own apps/cmd_<name>.cpp and registers itself through this table.
#pragma once
#include <CLI/CLI.hpp>
#include <functional>
#include <string>
#include <vector>

namespace linspec::apps {

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
