// linspec info PATH [--json]: summarise a native checkpoint, a GGUF file or an HF model directory.
#include <iostream>

#include "apps/command.h"
#include "model/formats/pretrained.h"

namespace linspec::apps {
namespace {

std::string path;
bool json_out = false;

int run_info() {
  nlohmann::json d = describe_model_file(path);
  if (json_out) std::cout << d.dump(1) << "\n";
  else std::cout << summarize_model_description(d);
  return 0;
}

RegisterCommand reg(Command{"info", "Summarise a checkpoint, GGUF file or HF directory", [](CLI::App& s) {
                              s.add_option("path", path, "File or directory")->required();
                              s.add_flag("--json", json_out,
                                         "Machine-readable: {format, config, tensors: [{name, shape, dtype, xxh64}]}");
                              return run_info;
                            }});
}  // namespace
}  // namespace linspec::apps
