#include "model/formats/pretrained.h"

#include <hdf5.h>
#include <xxhash.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/error.h"
#include "model/formats/gguf_model.h"
#include "model/formats/hf_tokenizer.h"
#include "model/formats/safetensors.h"
#include "model/hdf5_util.h"

namespace linspec {

using nlohmann::json;
namespace fs = std::filesystem;

ModelFileKind detect_model_file(const std::string& path) {
  if (!fs::exists(path)) throw_input_error(path, ": no such file or directory");
  if (fs::is_directory(path)) return ModelFileKind::HfDirectory;
  std::ifstream in(path, std::ios::binary);
  char magic[4] = {};
  if (!in.read(magic, 4)) throw_input_error(path, ": too short to be a model file");
  if (std::string(magic, 4) == "GGUF") return ModelFileKind::Gguf;
  h5::quiet_errors();
  if (H5Fis_hdf5(path.c_str()) > 0) return ModelFileKind::Checkpoint;
  throw_input_error(path, ": not a GGUF file, an HDF5 checkpoint or an HF model directory");
}

Checkpoint load_pretrained(const std::string& source, DType dtype) {
  switch (detect_model_file(source)) {
    case ModelFileKind::HfDirectory: return load_hf_model(source, dtype);
    case ModelFileKind::Gguf: return load_gguf_model(source, dtype);
    case ModelFileKind::Checkpoint: break;
  }
  throw_input_error(source, ": is already a linspec checkpoint; convert reads an HF directory or a .gguf file");
}

namespace {

json tensor_entry(const std::string& name, const Shape& shape, const std::string& dtype, uint64_t hash) {
  return json{{"name", name}, {"shape", shape}, {"dtype", dtype}, {"xxh64", xxh64_hex(hash)}};
}

json tokenizer_summary(const TokenizerData& t) {
  return json{{"type", t.type}, {"vocab_size", t.vocab.size()}, {"merges", t.merges.size()}, {"pre", t.pre},
              {"bos_id", t.bos_id}, {"eos_id", t.eos_id}, {"add_bos", t.add_bos}, {"has_spm_model", !t.spm_model.empty()}};
}

// Metadata values for display: scalars as they are, arrays by element type and length.
json gguf_value_json(const GgufValue& v) {
  return std::visit(
      [&](const auto& x) -> json {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, std::vector<GgufValue>>)
          return std::string("array<") + gguf_value_type_name(v.elem_type) + ">[" + std::to_string(x.size()) + "]";
        else return x;
      },
      v.value);
}

json describe_gguf(const std::string& path) {
  GgufFile f(path);
  json d{{"format", "gguf"}, {"gguf_version", f.version()}};
  try {
    d["config"] = gguf_model_config(f);
  } catch (const InputError& e) {
    d["config"] = nullptr;
    d["config_error"] = e.what();
  }
  try {
    d["tokenizer"] = tokenizer_summary(gguf_tokenizer(f));
  } catch (const InputError& e) {
    d["tokenizer"] = nullptr;
    d["tokenizer_error"] = e.what();
  }
  json meta = json::object();
  for (const auto& [k, v] : f.metadata()) {
    json jv = gguf_value_json(v);
    if (jv.is_string() && jv.get<std::string>().size() > 200) jv = jv.get<std::string>().substr(0, 200) + "...";
    meta[k] = jv;
  }
  d["metadata"] = meta;
  json tensors = json::array();
  for (const auto& t : f.tensors())
    tensors.push_back(tensor_entry(t.name, t.shape(), t.type.name, XXH64(f.tensor_bytes(t), t.nbytes, 0)));
  d["tensors"] = tensors;
  return d;
}

json describe_hf(const std::string& dir) {
  json d{{"format", "hf"}};
  ModelConfig config = model_config_from_hf_file((fs::path(dir) / "config.json").string());
  d["config"] = config;
  HfWeights w = open_hf_weights(dir);
  json tensors = json::array();
  for (const auto& [name, loc] : w.tensors)
    tensors.push_back(tensor_entry(name, loc.second->shape, loc.second->dtype,
                                   XXH64(loc.first->bytes(*loc.second), loc.second->nbytes, 0)));
  d["tensors"] = tensors;
  try {
    d["tokenizer"] = tokenizer_summary(load_hf_tokenizer(dir, config));
  } catch (const InputError& e) {
    d["tokenizer"] = nullptr;
    d["tokenizer_error"] = e.what();
  }
  return d;
}

json describe_checkpoint(const std::string& path) {
  json d{{"format", "linspec"}};
  with_hdf5_file(path, [&](H5Handle file) {
    if (!h5::has_attr(file, "format") || h5::read_string_attr(file, "format") != "linspec")
      throw_input_error(path, ": an HDF5 file but not a linspec checkpoint (root attribute 'format')");
    d["format_version"] = h5::read_format_version(file, kCheckpointFormatVersion, "checkpoint");
    h5::Handle config = h5::open_group(file, "config");
    json cj = json::parse(h5::read_checked_string_attr(config.get(), "model", h5::Checksum::IfPresent), nullptr, false);
    if (cj.is_discarded()) throw_input_error(path, ": /config attribute 'model' is not valid JSON");
    d["config"] = model_config_from_json(cj, path + " (/config model)");
    json tensors = json::array();
    for (const char* group : {"model", "draft"}) {
      if (!h5::has_link(file, group)) continue;
      for (const auto& t : list_tensor_group(file, group, path))
        tensors.push_back(tensor_entry(std::string(group) + "/" + t.name, t.shape, t.dtype, t.xxh64));
    }
    d["tensors"] = tensors;
    // Root groups, so a reader can tell a training snapshot (optimizer, trainer) from a serving checkpoint.
    json groups = json::array();
    H5G_info_t root;
    H5Gget_info(file, &root);
    for (hsize_t i = 0; i < root.nlinks; ++i) {
      char name[256] = {};
      H5Lget_name_by_idx(file, ".", H5_INDEX_NAME, H5_ITER_INC, i, name, sizeof name, H5P_DEFAULT);
      groups.push_back(name);
    }
    d["groups"] = groups;
    if (h5::has_link(file, "tokenizer")) {
      h5::Handle tok = h5::open_group(file, "tokenizer");
      json tj = json::parse(h5::read_checked_string_attr(tok.get(), "json", h5::Checksum::IfPresent), nullptr, false);
      if (tj.is_discarded()) throw_input_error(path, ": /tokenizer attribute 'json' is not valid JSON");
      TokenizerData t = tokenizer_data_from_json(tj, path + " (/tokenizer)");
      if (h5::has_link(tok.get(), "spm_model")) t.spm_model = "x";  // presence only
      d["tokenizer"] = tokenizer_summary(t);
    }
  });
  return d;
}

}  // namespace

json describe_model_file(const std::string& path) {
  json d;
  switch (detect_model_file(path)) {
    case ModelFileKind::HfDirectory: d = describe_hf(path); break;
    case ModelFileKind::Gguf: d = describe_gguf(path); break;
    case ModelFileKind::Checkpoint: d = describe_checkpoint(path); break;
  }
  d["path"] = path;
  return d;
}

std::string summarize_model_description(const json& d) {
  std::ostringstream os;
  os << "file:       " << d.value("path", "") << "\nformat:     " << d.value("format", "");
  if (d.contains("gguf_version")) os << " (GGUF v" << d["gguf_version"].get<int>() << ")";
  os << "\n";
  if (d.contains("config") && d["config"].is_object()) {
    const json& c = d["config"];
    os << "model:      " << c["architecture"].get<std::string>() << ", " << c["num_layers"] << " layers, hidden "
       << c["hidden_size"] << ", heads " << c["num_heads"] << " (kv " << c["num_kv_heads"] << "), head_dim "
       << c["head_dim"] << ", ffn " << c["intermediate_size"] << ", vocab " << c["vocab_size"] << "\n";
    os << "            rope theta " << c["rope_theta"].get<double>() << " (scaling "
       << c["rope_scaling"]["type"].get<std::string>() << "), rms eps " << c["rms_norm_eps"].get<double>()
       << ", context " << c["max_position_embeddings"] << ", "
       << (c["tie_word_embeddings"].get<bool>() ? "tied" : "untied") << " embeddings"
       << (c["attention_bias"].get<bool>() ? ", q/k/v bias" : "") << "\n";
  } else if (d.contains("config_error")) {
    os << "model:      not loadable: " << d["config_error"].get<std::string>() << "\n";
  }
  std::map<std::string, int> census;
  double params = 0;
  for (const auto& t : d["tensors"]) {
    census[t["dtype"].get<std::string>()]++;
    double n = 1;
    for (const auto& s : t["shape"]) n *= s.get<double>();
    params += n;
  }
  os << "tensors:    " << d["tensors"].size() << " (";
  bool first = true;
  for (const auto& [type, n] : census) {
    os << (first ? "" : ", ") << type << ": " << n;
    first = false;
  }
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.2fM", params / 1e6);
  os << "), " << buf << " parameters\n";
  if (d.contains("tokenizer") && d["tokenizer"].is_object()) {
    const json& t = d["tokenizer"];
    os << "tokenizer:  " << t["type"].get<std::string>() << ", " << t["vocab_size"] << " tokens";
    if (t["merges"].get<size_t>() > 0) os << ", " << t["merges"] << " merges";
    os << ", pre " << t["pre"].get<std::string>() << ", bos " << t["bos_id"] << ", eos " << t["eos_id"]
       << (t["add_bos"].get<bool>() ? ", adds BOS" : "") << "\n";
  } else if (d.contains("tokenizer_error")) {
    os << "tokenizer:  not loadable: " << d["tokenizer_error"].get<std::string>() << "\n";
  }
  return os.str();
}

}  // namespace linspec
