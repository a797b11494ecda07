#include "trainer/snapshot.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/error.h"
#include "model/hdf5_util.h"
#include "trainer/adamw.h"
#include "trainer/atomic_file.h"

namespace linspec::trainer {

namespace fs = std::filesystem;

namespace {

constexpr const char* kLatest = "latest";

// Per-rank pairs of u64 are stored as i64 [world, 2] datasets (bit-identical; HDF5 tensors here have no u64).
Tensor pairs_to_tensor(const std::vector<std::pair<uint64_t, uint64_t>>& pairs) {
  std::vector<int64_t> flat;
  for (const auto& [a, b] : pairs) {
    flat.push_back(static_cast<int64_t>(a));
    flat.push_back(static_cast<int64_t>(b));
  }
  return Tensor::from_vector(flat, {static_cast<int64_t>(pairs.size()), 2});
}

std::vector<std::pair<uint64_t, uint64_t>> tensor_to_pairs(const Tensor& t, int world, const std::string& path,
                                                           const std::string& name) {
  if (t.dtype() != DType::I64 || t.shape() != Shape{world, 2})
    throw_input_error(path, ": tensor '/trainer/", name, "' has shape ", shape_str(t.shape()), " and dtype ",
                      dtype_name(t.dtype()), " (expected i64 [", world, ", 2] for ", world, " ranks)");
  const int64_t* p = t.data<int64_t>();
  std::vector<std::pair<uint64_t, uint64_t>> out;
  for (int r = 0; r < world; ++r) out.emplace_back(static_cast<uint64_t>(p[2 * r]), static_cast<uint64_t>(p[2 * r + 1]));
  return out;
}

void write_trainer_group(H5Handle file, const TrainerState& st) {
  LINSPEC_CHECK(st.world() >= 1, "trainer state needs the RNG state of at least one rank");
  LINSPEC_CHECK(st.loader_per_rank.size() == st.rng_per_rank.size(), st.rng_per_rank.size(), " RNG states but ",
                st.loader_per_rank.size(), " loader states");
  std::vector<std::pair<uint64_t, uint64_t>> rng, loader;
  for (const auto& r : st.rng_per_rank) rng.emplace_back(r.seed, r.counter);
  for (const auto& l : st.loader_per_rank) loader.emplace_back(l.epoch, l.cursor);
  write_tensor_group(file, "trainer", {{"rng", pairs_to_tensor(rng)}, {"loader", pairs_to_tensor(loader)}});

  const nlohmann::json j = {{"step", st.step}, {"tokens", st.tokens}, {"world", st.world()}, {"extra", st.extra}};
  const std::string text = j.dump();
  h5::Handle g = h5::open_group(file, "trainer");
  h5::write_checked_string_attr(g.get(), "state", text);
}

TrainerState read_trainer_group(H5Handle file, const std::string& path) {
  h5::Handle g = h5::open_group(file, "trainer");
  const std::string text = h5::read_checked_string_attr(g.get(), "state", h5::Checksum::Required);
  const nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
  auto int_field = [&](const char* key) -> int64_t {
    if (j.is_discarded() || !j.contains(key) || !j.at(key).is_number_integer())
      throw_input_error(path, ": attribute '/trainer state': key '", key, "' is missing or not an integer");
    return j.at(key).get<int64_t>();
  };
  TrainerState st;
  st.step = int_field("step");
  st.tokens = int_field("tokens");
  const int64_t world = int_field("world");
  if (st.step < 0 || st.tokens < 0 || world < 1 || world > (1 << 20))
    throw_input_error(path, ": attribute '/trainer state': step ", st.step, ", tokens ", st.tokens, ", world ", world,
                      " out of range");
  if (j.contains("extra")) st.extra = j.at("extra");

  const auto tensors = read_tensor_group(file, "trainer", path, /*verify_checksums=*/true);
  auto need = [&](const char* name) -> const Tensor& {
    auto it = tensors.find(name);
    if (it == tensors.end()) throw_input_error(path, ": tensor '/trainer/", name, "' is missing");
    return it->second;
  };
  for (const auto& [seed, counter] : tensor_to_pairs(need("rng"), static_cast<int>(world), path, "rng"))
    st.rng_per_rank.push_back({seed, counter});
  for (const auto& [epoch, cursor] : tensor_to_pairs(need("loader"), static_cast<int>(world), path, "loader"))
    st.loader_per_rank.push_back({epoch, cursor});
  return st;
}

// Removes "<name>.tmp.<pid>" files an interrupted write left behind.
void remove_leftover_temporaries(const std::string& dir, std::ostream* report) {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (!entry.is_regular_file(ec) || !is_temporary_name(name)) continue;
    const std::string base = name.substr(0, name.rfind(".tmp."));
    if (base != kLatest && base != "metrics.jsonl" && !snapshot_step_from_name(base)) continue;
    if (fs::remove(entry.path(), ec) && report)
      *report << "linspec: removed " << entry.path().string() << " (left over from an interrupted write)\n";
  }
}

std::vector<std::pair<int64_t, std::string>> snapshots_by_step(const std::string& dir) {
  std::vector<std::pair<int64_t, std::string>> out;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    if (!entry.is_regular_file(ec)) continue;
    if (auto step = snapshot_step_from_name(entry.path().filename().string()))
      out.emplace_back(*step, entry.path().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

std::string snapshot_file_name(int64_t step) {
  LINSPEC_CHECK(step >= 0, "negative snapshot step ", step);
  return "snapshot-" + std::to_string(step) + ".h5";
}

std::optional<int64_t> snapshot_step_from_name(const std::string& name) {
  const std::string prefix = "snapshot-", suffix = ".h5";
  if (name.size() <= prefix.size() + suffix.size() || name.compare(0, prefix.size(), prefix) != 0 ||
      name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0)
    return std::nullopt;
  const std::string digits = name.substr(prefix.size(), name.size() - prefix.size() - suffix.size());
  if (digits.size() > 18 || !std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; }))
    return std::nullopt;
  return std::stoll(digits);
}

std::vector<std::string> list_snapshots(const std::string& dir) {
  std::vector<std::string> out;
  for (auto& [step, path] : snapshots_by_step(dir)) out.push_back(std::move(path));
  return out;
}

std::string read_latest_pointer(const std::string& dir) {
  std::ifstream in(fs::path(dir) / kLatest);
  std::string name;
  if (in) std::getline(in, name);
  while (!name.empty() && std::isspace(static_cast<unsigned char>(name.back()))) name.pop_back();
  return name;
}

std::string resolve_latest_pointer(const std::string& path) {
  const fs::path given(path);
  fs::path dir;
  if (fs::is_directory(given) && fs::is_regular_file(given / kLatest)) dir = given;
  else if (given.filename() == kLatest && fs::is_regular_file(given)) dir = given.parent_path();
  else return path;
  const std::string name = read_latest_pointer(dir.empty() ? "." : dir.string());
  const fs::path target = dir / name;
  if (name.empty() || !fs::is_regular_file(target))
    throw_input_error((dir / kLatest).string(), ": points at '", name, "', which is not a file");
  return target.string();
}

std::string save_snapshot(const std::string& dir, int64_t step, const Checkpoint& model_part,
                          const std::map<std::string, Tensor>& optimizer_state, int64_t optimizer_step,
                          const TrainerState& trainer, int keep_last, const ExtraGroupsWriter& extra_groups) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (!fs::is_directory(dir)) throw_input_error(dir, ": cannot create the checkpoint directory: ", ec.message());
  remove_leftover_temporaries(dir, nullptr);

  const std::string name = snapshot_file_name(step);
  const std::string path = (fs::path(dir) / name).string();
  write_hdf5_atomically(path, [&](H5Handle file) {
    write_checkpoint_contents(file, model_part);
    if (extra_groups) extra_groups(file);
    write_tensor_group(file, "optimizer", optimizer_state);
    h5::Handle opt = h5::open_group(file, "optimizer");
    h5::write_int_attr(opt.get(), "step", optimizer_step);
    write_trainer_group(file, trainer);
  });
  // Only now, with the snapshot complete and durable, may the pointer name it.
  write_text_atomically((fs::path(dir) / kLatest).string(), name + "\n");

  if (keep_last > 0) {
    auto older = snapshots_by_step(dir);
    std::erase_if(older, [&](const auto& s) { return s.second == path; });
    const size_t keep_others = static_cast<size_t>(keep_last - 1);
    for (size_t i = 0; i + keep_others < older.size(); ++i) fs::remove(older[i].second, ec);
  }
  return path;
}

LoadedSnapshot load_snapshot(const std::string& path) {
  LoadedSnapshot snap;
  snap.path = path;
  with_hdf5_file(path, [&](H5Handle file) {
    for (const char* group : {"optimizer", "trainer"})
      if (!h5::has_link(file, group))
        throw_input_error(path, ": not a training snapshot (no /", group,
                          " group); a model checkpoint belongs in model.init, not --resume");
    snap.optimizer_state = read_tensor_group(file, "optimizer", path, /*verify_checksums=*/true);
    h5::Handle opt = h5::open_group(file, "optimizer");
    snap.optimizer_step = h5::read_int_attr(opt.get(), "step");
    if (snap.optimizer_step < 0) throw_input_error(path, ": attribute '/optimizer step' is negative");
    snap.trainer = read_trainer_group(file, path);
  });
  snap.model = load_checkpoint(path, /*verify_checksums=*/true);
  return snap;
}

std::optional<LoadedSnapshot> find_resume(const std::string& dir, const std::string& spec, std::ostream& warn) {
  if (spec.empty()) return std::nullopt;
  if (spec != "auto") return load_snapshot(spec);
  if (!fs::is_directory(dir)) return std::nullopt;
  remove_leftover_temporaries(dir, &warn);
  const auto snapshots = snapshots_by_step(dir);
  for (auto it = snapshots.rbegin(); it != snapshots.rend(); ++it) {
    try {
      return load_snapshot(it->second);
    } catch (const std::exception& e) {
      warn << "linspec: warning: skipping snapshot " << it->second << ", it is damaged: " << e.what() << "\n";
    }
  }
  if (snapshots.empty()) return std::nullopt;
  throw_input_error(dir, ": none of the ", snapshots.size(),
                    " snapshots verifies (see the warnings above); resume from a PATH or start a new checkpoint.dir");
}

RngState rank_rng_state(const LoadedSnapshot& snap, int rank, int world) {
  if (snap.trainer.world() != world)
    throw_input_error(snap.path, ": snapshot written by ", snap.trainer.world(), " ranks cannot resume with ", world,
                      " ranks (the data cursors are per rank): run with ", snap.trainer.world(), " ranks");
  return snap.trainer.rng_per_rank.at(static_cast<size_t>(rank));
}

LoaderState rank_loader_state(const LoadedSnapshot& snap, int rank, int world) {
  rank_rng_state(snap, rank, world);  // same world-size check
  return snap.trainer.loader_per_rank.at(static_cast<size_t>(rank));
}

std::map<std::string, Tensor> to_tensor_map(const std::vector<NamedTensor>& named) {
  std::map<std::string, Tensor> out;
  for (const auto& nt : named) {
    const bool fresh = out.emplace(nt.name, nt.tensor).second;
    LINSPEC_CHECK(fresh, "duplicate optimizer state name '", nt.name, "'");
  }
  return out;
}

std::vector<NamedTensor> to_named_tensors(const std::map<std::string, Tensor>& tensors) {
  std::vector<NamedTensor> out;
  for (const auto& [name, t] : tensors) out.push_back({name, t});
  return out;
}

}  // namespace linspec::trainer
