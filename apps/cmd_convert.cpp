// linspec convert --from <hf-dir|file.gguf> --out model.h5: load, validate, write the native checkpoint atomically.
#include <chrono>
#include <iostream>

#include "apps/command.h"
#include "core/error.h"
#include "model/formats/pretrained.h"

namespace linspec::apps {
namespace {

std::string from, out, dtype_name_opt = "f32";
bool force = false;

int run_convert() {
  check_output_path(out, force, from, "--from");
  const DType dtype = dtype_from_name(dtype_name_opt);
  if (dtype != DType::F32 && dtype != DType::BF16) throw_input_error("--dtype ", dtype_name_opt, ": expected f32 or bf16");
  const auto t0 = std::chrono::steady_clock::now();
  Checkpoint ck = load_pretrained(from, dtype);
  save_checkpoint(out, ck);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::cerr << "linspec convert: " << from << " (" << ck.extra_attrs["source_format"] << ", " << ck.tensors.size()
            << " tensors, " << ck.config.num_layers << " layers) -> " << out << " [" << dtype_name(dtype) << "] in "
            << secs << " s\n";
  return 0;
}

RegisterCommand reg(Command{"convert", "Convert an HF directory or a GGUF file into a native checkpoint",
                            [](CLI::App& s) {
                              s.add_option("--from", from, "HF model directory or .gguf file")->required();
                              s.add_option("--out", out, "Output checkpoint (.h5)")->required();
                              s.add_option("--dtype", dtype_name_opt, "Stored weight type: f32 (default) or bf16");
                              s.add_flag("--force", force, "Overwrite an existing --out (replaced atomically)");
                              return run_convert;
                            }});
}  // namespace
}  // namespace linspec::apps
