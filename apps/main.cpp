// linspec: one binary, one subcommand per apps/cmd_*.cpp. Exit codes: 0 ok, 1 check failed, 2 bad input.
#include <hdf5.h>

#include <algorithm>
#include <cstdio>
#include <iostream>

#include "apps/command.h"
#include "core/error.h"
#include "core/threads.h"

namespace linspec::apps {
std::vector<Command>& command_table() {
  static std::vector<Command> table;
  return table;
}
}  // namespace linspec::apps

int main(int argc, char** argv) {
  using namespace linspec;
  // Every HDF5 file linspec writes is flushed and closed (or removed) before the command returns, so HDF5's own exit
  // handler has nothing to do, except after a failed write (disk full). There it would retry closing the broken file
  // and crash. Must precede any other HDF5 call.
  H5dont_atexit();
  CLI::App app{"linspec: linear-attention LLaMA models with exact speculative decoding"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "linspec 0.1.0");
  int threads = 0;
  app.add_option("--threads", threads, "CPU threads (default: OMP_NUM_THREADS or all cores)");

  auto& table = apps::command_table();
  // Static registration order is unspecified across files: list subcommands in the documented order.
  const std::vector<std::string> order = {"convert", "info", "prepare", "linearize", "train", "eval",
                                          "generate", "verify", "export", "bench"};
  std::sort(table.begin(), table.end(), [&](const auto& a, const auto& b) {
    auto ia = std::find(order.begin(), order.end(), a.name), ib = std::find(order.begin(), order.end(), b.name);
    return ia != ib ? ia < ib : a.name < b.name;
  });
  std::vector<std::pair<CLI::App*, std::function<int()>>> actions;
  for (auto& cmd : table) {
    CLI::App* sub = app.add_subcommand(cmd.name, cmd.help);
    actions.emplace_back(sub, cmd.setup(*sub));
  }

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    // CLI11 returns 0 for --help/--version; every real parse error is a usage error (exit 2).
    return rc == 0 ? 0 : 2;
  }
  try {
    set_num_threads(threads);
    for (auto& [sub, action] : actions)
      if (sub->parsed()) return action();
  } catch (const InputError& e) {
    std::cerr << "linspec: error: " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "linspec: internal error: " << e.what() << "\n";
    return 3;
  }
  return 2;
}
