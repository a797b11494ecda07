#include "model/formats/safetensors_writer.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>

#include <nlohmann/json.hpp>

#include "core/error.h"

namespace linspec {
namespace {

const char* safetensors_dtype(DType d, const std::string& name) {
  switch (d) {
    case DType::F32: return "F32";
    case DType::BF16: return "BF16";
    case DType::F16: return "F16";
    default: LINSPEC_CHECK(false, "write_safetensors: tensor '", name, "' has dtype ", dtype_name(d));
  }
}

}  // namespace

void write_safetensors(const std::string& path, const std::map<std::string, Tensor>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  nlohmann::ordered_json header;
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::vector<Tensor> data;
  uint64_t offset = 0;
  for (const auto& [name, tensor] : tensors) {
    LINSPEC_CHECK(tensor.defined() && tensor.device() == Device::CPU, "write_safetensors: '", name,
                  "' must be a defined CPU tensor");
    Tensor t = tensor.contiguous();
    header[name] = {{"dtype", safetensors_dtype(t.dtype(), name)},
                    {"shape", t.shape()},
                    {"data_offsets", {offset, offset + t.nbytes()}}};
    offset += t.nbytes();
    data.push_back(std::move(t));
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');  // keeps the data 8-byte aligned, as the reference writer does
  const uint64_t len = text.size();
  uint8_t len_le[8];
  for (int i = 0; i < 8; ++i) len_le[i] = static_cast<uint8_t>(len >> (8 * i));

  std::vector<std::string_view> pieces = {{reinterpret_cast<const char*>(len_le), 8}, text};
  for (const Tensor& t : data) pieces.emplace_back(static_cast<const char*>(t.raw_data()), t.nbytes());
  write_file_synced(path, pieces);
}

void write_file_synced(const std::string& path, const std::vector<std::string_view>& pieces) {
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    if (!out) throw_input_error(path, ": cannot create file: ", std::strerror(errno));
    for (std::string_view p : pieces) out.write(p.data(), static_cast<std::streamsize>(p.size()));
    out.flush();
    if (!out) throw_input_error(path, ": write failed: ", std::strerror(errno));
  }
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  const bool synced = fd >= 0 && ::fsync(fd) == 0;
  if (fd >= 0) ::close(fd);
  if (!synced) throw_input_error(path, ": cannot fsync the written file: ", std::strerror(errno));
}

}  // namespace linspec
