// linspec export --checkpoint SNAP|DIR|DIR/latest [--out serve.h5] [--hf-dir DIR] [--dtype f32|bf16] [--force]
// A training snapshot (or any checkpoint) as what serving needs: --out writes a native checkpoint with LoRA merged,
// the tokenizer and the draft heads / draft model, without optimizer or trainer state; --hf-dir writes config.json +
// model.safetensors + the tokenizer files for transformers (softmax models only: an HF LlamaForCausalLM cannot hold
// linear attention, so a linearized model is refused before anything is written). Every output is written atomically.
#include <filesystem>
#include <iostream>

#include "apps/command.h"
#include "core/error.h"
#include "data/hf_tokenizer_files.h"
#include "model/draft_heads.h"
#include "model/draft_model.h"
#include "model/feature_draft.h"
#include "model/formats/hf_export.h"
#include "serve/serving_checkpoint.h"
#include "trainer/snapshot.h"

namespace linspec::apps {
namespace {

std::string checkpoint, out, hf_dir, dtype_name_opt = "f32";
bool force = false;

int run_export() {
  namespace fs = std::filesystem;
  if (out.empty() && hf_dir.empty()) throw_input_error("export: give --out FILE.h5 and/or --hf-dir DIR");
  if (!fs::exists(checkpoint)) throw_input_error(checkpoint, ": no such file");
  // A training directory or its `latest` pointer: the snapshot it names.
  if (const std::string named = trainer::resolve_latest_pointer(checkpoint); named != checkpoint) {
    std::cerr << "linspec export: " << checkpoint << " -> " << named << "\n";
    checkpoint = named;
  }
  if (fs::is_directory(checkpoint))
    throw_input_error(checkpoint, ": is a directory; export reads a native checkpoint or snapshot (.h5): "
                      "`linspec convert` an HF directory first");
  if (!out.empty()) check_output_path(out, force, checkpoint, "--checkpoint");
  if (!hf_dir.empty()) check_output_path(hf_dir, force);
  const DType dtype = dtype_from_name(dtype_name_opt);
  if (dtype != DType::F32 && dtype != DType::BF16) throw_input_error("--dtype ", dtype_name_opt, ": expected f32 or bf16");

  int merged = 0;
  Checkpoint ck = load_serving_checkpoint(checkpoint, &merged);
  // Refuse before anything is written: an --out next to a refused --hf-dir would be a half-done export.
  std::map<std::string, std::string> tokenizer_files;
  if (!hf_dir.empty()) {
    check_hf_exportable(ck, checkpoint);
    tokenizer_files = hf_tokenizer_files(ck.tokenizer, ck.config, checkpoint + " (/tokenizer)");
  }
  for (auto& [name, t] : ck.tensors) t = t.to(dtype).contiguous();
  ck.extra_attrs["exported_from"] = checkpoint;

  std::cerr << "linspec export: " << checkpoint << ": " << ck.tensors.size() << " model tensors [" << dtype_name(dtype)
            << "], " << merged << " LoRA adapters merged\n";
  if (!out.empty()) {
    write_serving_checkpoint(ck, checkpoint, out);
    std::cerr << "linspec export: -> " << out << " (model, tokenizer" << (has_draft_heads(out) ? ", draft heads" : "")
              << (has_draft_model(out) ? ", draft model" : "") << (has_feature_draft(out) ? ", feature draft" : "")
              << "; no optimizer or trainer state)\n";
  }
  if (!hf_dir.empty()) {
    write_hf_directory(ck, hf_dir, dtype, checkpoint, force, tokenizer_files);
    std::cerr << "linspec export: -> " << hf_dir << "/ (config.json, model.safetensors";
    for (const auto& [name, contents] : tokenizer_files) std::cerr << ", " << name;
    std::cerr << ")\n";
  }
  return 0;
}

RegisterCommand reg(Command{"export", "Write a serving checkpoint or an HF directory", [](CLI::App& s) {
                              s.add_option("--checkpoint", checkpoint,
                                           "Training snapshot or checkpoint (.h5), or a training directory or its "
                                           "`latest` pointer (the snapshot it names)")
                                  ->required();
                              s.add_option("--out", out, "Serving checkpoint (.h5): model with LoRA merged, tokenizer, "
                                                         "draft heads / draft model");
                              s.add_option("--hf-dir", hf_dir,
                                           "HF directory (config.json, model.safetensors, tokenizer and generation "
                                           "config files) for transformers; softmax models only");
                              s.add_option("--dtype", dtype_name_opt, "Stored weight type: f32 (default) or bf16");
                              s.add_flag("--force", force, "Replace an existing --out / --hf-dir (atomically)");
                              return run_export;
                            }});
}  // namespace
}  // namespace linspec::apps
