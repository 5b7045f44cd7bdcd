// safetensors reading and writing. The reader maps the file read-only and validates the whole
// header before any tensor is touched (types, dtypes, offsets, exact coverage of the data
// buffer), so a load can never read outside the mapping; the rules match the reference Rust
// implementation (huggingface/safetensors). The writer sorts tensors by name, pads the header
// with spaces to a multiple of 8 and writes through a temp file + rename.
//
// Byte order: safetensors is little-endian and lathe assumes a little-endian host (x86-64,
// aarch64), so tensor bytes are copied as they are; a big-endian build fails to compile.
#include "model/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <optional>
#include <set>

#include "core/atomic_file.h"
#include "core/error.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "lathe's safetensors code copies raw bytes and needs a little-endian host"
#endif

namespace lathe {
namespace {

// The reference implementation's cap: a larger header is treated as corrupt, not parsed.
constexpr uint64_t kMaxHeaderBytes = 100'000'000;
// JSON nesting a valid header never needs (object → entry → shape array is depth 3); the cap
// keeps a hostile header of "[[[[..." from building millions of nested values.
constexpr int kMaxJsonDepth = 16;

struct DtypeInfo {
  const char* name;
  uint64_t size;
  // LibTorch 1.13 has no unsigned 16/32/64-bit or float8 types: such tensors are validated
  // (so the file still opens) but load() refuses them.
  std::optional<torch::ScalarType> scalar_type;
};

const std::vector<DtypeInfo>& dtype_table() {
  static const std::vector<DtypeInfo> table = {
      {"F64", 8, torch::kFloat64},  {"F32", 4, torch::kFloat32}, {"F16", 2, torch::kFloat16},
      {"BF16", 2, torch::kBFloat16}, {"I64", 8, torch::kInt64},  {"I32", 4, torch::kInt32},
      {"I16", 2, torch::kInt16},    {"I8", 1, torch::kInt8},     {"U8", 1, torch::kUInt8},
      {"BOOL", 1, torch::kBool},    {"U16", 2, std::nullopt},    {"U32", 4, std::nullopt},
      {"U64", 8, std::nullopt},     {"F8_E4M3", 1, std::nullopt}, {"F8_E5M2", 1, std::nullopt},
  };
  return table;
}

const DtypeInfo* find_dtype(const std::string& name) {
  for (const auto& d : dtype_table()) {
    if (name == d.name) return &d;
  }
  return nullptr;
}

std::string known_dtype_list() {
  std::string out;
  for (const auto& d : dtype_table()) {
    if (!out.empty()) out += ", ";
    out += d.name;
  }
  return out;
}

const char* dtype_name_for(torch::ScalarType t) {
  for (const auto& d : dtype_table()) {
    if (d.scalar_type && *d.scalar_type == t) return d.name;
  }
  return nullptr;
}

std::string shape_text(const std::vector<int64_t>& shape) {
  std::string out = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) out += ", ";
    out += std::to_string(shape[i]);
  }
  return out + "]";
}

std::string json_type_name(const nlohmann::json& v) {
  if (v.is_number_float()) return "a non-integer number";
  if (v.is_number()) return "a number";
  if (v.is_array() || v.is_object()) return std::string("an ") + v.type_name();
  return std::string("a ") + v.type_name();
}

// Deepest bracket nesting of a JSON text, ignoring brackets inside strings. Stops early once
// past `limit`.
int json_depth(const char* text, size_t size, int limit) {
  int depth = 0;
  int deepest = 0;
  bool in_string = false;
  for (size_t i = 0; i < size; ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') ++i;
      else if (c == '"') in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      deepest = std::max(deepest, ++depth);
      if (deepest > limit) return deepest;
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return deepest;
}

// A non-negative JSON integer; nullopt for anything else (negative, float, string, ...).
std::optional<uint64_t> as_count(const nlohmann::json& v) {
  if (v.is_number_unsigned()) return v.get<uint64_t>();
  if (v.is_number_integer() && v.get<int64_t>() >= 0) return static_cast<uint64_t>(v.get<int64_t>());
  return std::nullopt;
}

[[noreturn]] void fail_in(const std::string& path, const std::string& why) { fail(path + ": " + why); }

}  // namespace

SafetensorsFile::SafetensorsFile(const std::string& path) : path_(path) {
  auto bad = [&](const std::string& why) { fail_in(path_, why); };

  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) bad(std::string("cannot open: ") + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    bad("not a regular file");
  }
  const uint64_t file_size = static_cast<uint64_t>(st.st_size);
  if (file_size < 8) {
    ::close(fd);
    bad("file is " + std::to_string(file_size) +
        " bytes, too short for the 8-byte header length (not a safetensors file?)");
  }
  map_ = ::mmap(nullptr, file_size, PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);  // the mapping stays valid without the descriptor
  if (map_ == MAP_FAILED) {
    map_ = nullptr;
    bad(std::string("cannot map: ") + std::strerror(errno));
  }
  map_size_ = file_size;

  // From here on the destructor will not run if we throw, so unmap on the way out.
  try {
    const auto* bytes = static_cast<const unsigned char*>(map_);
    uint64_t header_size = 0;
    std::memcpy(&header_size, bytes, 8);  // little-endian host (see top of file)
    if (header_size > kMaxHeaderBytes) {
      bad("header length " + std::to_string(header_size) + " exceeds the 100 MB limit (corrupt file?)");
    }
    if (8 + header_size > file_size) {
      bad("header length " + std::to_string(header_size) + " runs past the end of the file (" +
          std::to_string(file_size) + " bytes; truncated?)");
    }
    data_start_ = 8 + header_size;
    const uint64_t data_size = file_size - data_start_;
    const char* header_text = reinterpret_cast<const char*>(bytes + 8);

    if (json_depth(header_text, header_size, kMaxJsonDepth) > kMaxJsonDepth) {
      bad("header JSON is nested deeper than " + std::to_string(kMaxJsonDepth) + " levels");
    }
    nlohmann::json header;
    try {
      header = nlohmann::json::parse(header_text, header_text + header_size);
    } catch (const nlohmann::json::exception& e) {
      bad(std::string("header is not valid JSON: ") + e.what());
    }
    if (!header.is_object()) bad("header must be a JSON object, got " + json_type_name(header));

    for (const auto& item : header.items()) {
      // Named, not a structured binding: lambdas below capture it, which C++17 (and clang)
      // do not allow for bindings.
      const std::string& name = item.key();
      const nlohmann::json& value = item.value();
      if (name == "__metadata__") {
        if (!value.is_object()) bad("__metadata__ must be an object of strings, got " + json_type_name(value));
        for (const auto& [key, text] : value.items()) {
          if (!text.is_string()) {
            bad("__metadata__ key '" + key + "' must be a string, got " + json_type_name(text));
          }
          metadata_[key] = text.get<std::string>();
        }
        continue;
      }
      auto bad_tensor = [&](const std::string& why) { fail_in(path_, "tensor '" + name + "': " + why); };
      if (!value.is_object()) bad_tensor("entry must be an object, got " + json_type_name(value));
      for (const char* key : {"dtype", "shape", "data_offsets"}) {
        if (!value.contains(key)) bad_tensor(std::string("missing '") + key + "'");
      }
      const auto& dtype = value["dtype"];
      const auto& shape = value["shape"];
      const auto& offsets = value["data_offsets"];
      if (!dtype.is_string()) bad_tensor("'dtype' must be a string, got " + json_type_name(dtype));
      const DtypeInfo* info = find_dtype(dtype.get<std::string>());
      if (!info) {
        bad_tensor("unknown dtype '" + dtype.get<std::string>() + "' (known: " + known_dtype_list() + ")");
      }
      if (!shape.is_array()) bad_tensor("'shape' must be an array, got " + json_type_name(shape));
      if (!offsets.is_array() || offsets.size() != 2) {
        bad_tensor("'data_offsets' must be an array [begin, end], got " + offsets.dump());
      }

      SafetensorsEntry entry;
      entry.dtype = info->name;
      // Byte count = product(shape) * dtype size, computed with overflow checks.
      uint64_t expected_bytes = info->size;
      bool overflow = false;
      for (size_t i = 0; i < shape.size(); ++i) {
        const auto dim = as_count(shape[i]);
        if (!dim || *dim > static_cast<uint64_t>(INT64_MAX)) {
          bad_tensor("shape[" + std::to_string(i) + "] must be a non-negative integer, got " + shape[i].dump());
        }
        entry.shape.push_back(static_cast<int64_t>(*dim));
        overflow = overflow || __builtin_mul_overflow(expected_bytes, *dim, &expected_bytes);
      }
      const auto begin = as_count(offsets[0]);
      const auto end = as_count(offsets[1]);
      if (!begin || !end) {
        bad_tensor("data_offsets must be non-negative integers, got " + offsets.dump());
      }
      entry.begin = *begin;
      entry.end = *end;
      const std::string offsets_text =
          "data_offsets [" + std::to_string(entry.begin) + ", " + std::to_string(entry.end) + "]";
      if (entry.begin > entry.end) bad_tensor(offsets_text + " have begin > end");
      if (entry.end > data_size) {
        bad_tensor(offsets_text + " run past the data buffer (" + std::to_string(data_size) +
                   " bytes; truncated file?)");
      }
      if (overflow || entry.end - entry.begin != expected_bytes) {
        bad_tensor(offsets_text + " do not match shape " + shape_text(entry.shape) + " x " + entry.dtype +
                   " (" + (overflow ? std::string("over 2^64") : std::to_string(expected_bytes)) + " bytes)");
      }
      entries_.emplace(name, std::move(entry));
    }

    // Tensors must tile the data buffer: sorted by begin, each starts where the last ended.
    std::vector<const std::pair<const std::string, SafetensorsEntry>*> order;
    for (const auto& item : entries_) order.push_back(&item);
    std::sort(order.begin(), order.end(), [](auto* a, auto* b) {
      if (a->second.begin != b->second.begin) return a->second.begin < b->second.begin;
      if (a->second.end != b->second.end) return a->second.end < b->second.end;
      return a->first < b->first;  // deterministic errors for identical ranges
    });
    uint64_t covered = 0;
    const std::string* previous = nullptr;
    for (const auto* item : order) {
      const auto& e = item->second;
      if (e.begin < covered) {
        bad("tensor '" + item->first + "': data_offsets [" + std::to_string(e.begin) + ", " +
            std::to_string(e.end) + "] overlap tensor '" + *previous + "'");
      }
      if (e.begin > covered) {
        bad("tensor '" + item->first + "': data_offsets [" + std::to_string(e.begin) + ", " +
            std::to_string(e.end) + "] leave a gap of " + std::to_string(e.begin - covered) +
            " bytes after " + (previous ? "tensor '" + *previous + "'" : "the start of the data buffer"));
      }
      covered = e.end;
      previous = &item->first;
    }
    if (covered != data_size) {
      bad("data buffer has " + std::to_string(data_size - covered) + " bytes after " +
          (previous ? "the last tensor '" + *previous + "'" : "the header (no tensors)") +
          " that no tensor covers");
    }
  } catch (...) {
    ::munmap(map_, map_size_);
    map_ = nullptr;
    throw;
  }
}

SafetensorsFile::~SafetensorsFile() {
  if (map_) ::munmap(map_, map_size_);
}

std::vector<std::string> SafetensorsFile::names() const {
  std::vector<std::string> out;
  out.reserve(entries_.size());
  for (const auto& item : entries_) out.push_back(item.first);
  return out;
}

bool SafetensorsFile::contains(const std::string& name) const { return entries_.count(name) > 0; }

const SafetensorsEntry& SafetensorsFile::entry(const std::string& name) const {
  auto it = entries_.find(name);
  if (it == entries_.end()) {
    fail(path_ + ": tensor '" + name + "' not found (the file holds " + std::to_string(entries_.size()) +
         " tensors)");
  }
  return it->second;
}

torch::Tensor SafetensorsFile::load(const std::string& name) const {
  const SafetensorsEntry& e = entry(name);
  const DtypeInfo* info = find_dtype(e.dtype);  // validated in the constructor
  if (!info->scalar_type) {
    fail(path_ + ": tensor '" + name + "': dtype " + e.dtype + " has no LibTorch 1.13 equivalent");
  }
  const auto* src = static_cast<const unsigned char*>(map_) + data_start_ + e.begin;
  const uint64_t bytes = e.end - e.begin;
  if (*info->scalar_type == torch::kBool) {
    // Any byte other than 0/1 in a torch bool is undefined behaviour downstream.
    for (uint64_t i = 0; i < bytes; ++i) {
      if (src[i] > 1) {
        fail(path_ + ": tensor '" + name + "': BOOL byte " + std::to_string(i) + " is " +
             std::to_string(src[i]) + ", not 0 or 1");
      }
    }
  }
  torch::Tensor out = torch::empty(e.shape, torch::TensorOptions().dtype(*info->scalar_type));
  if (bytes > 0) std::memcpy(out.data_ptr(), src, bytes);
  return out;
}

void save_safetensors(const std::string& path, const NamedTensors& tensors,
                      const std::map<std::string, std::string>& metadata) {
  // Sorted by name: the header lists them in that order and the data follows it.
  std::vector<std::pair<std::string, torch::Tensor>> sorted;
  sorted.reserve(tensors.size());
  std::set<std::string> seen;
  for (const auto& [name, tensor] : tensors) {
    if (name == "__metadata__") fail(path + ": '__metadata__' is reserved and cannot name a tensor");
    if (!seen.insert(name).second) fail(path + ": tensor '" + name + "' is given twice");
    if (!tensor.defined()) fail(path + ": tensor '" + name + "' is undefined");
    if (!dtype_name_for(tensor.scalar_type())) {
      fail(path + ": tensor '" + name + "': dtype " + std::string(c10::toString(tensor.scalar_type())) +
           " cannot be stored in safetensors by lathe");
    }
    sorted.emplace_back(name, tensor.detach().cpu().contiguous());
  }
  std::sort(sorted.begin(), sorted.end(), [](const auto& a, const auto& b) { return a.first < b.first; });

  // ordered_json keeps __metadata__ first, as the Python writer does.
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) {
    nlohmann::ordered_json meta = nlohmann::ordered_json::object();
    for (const auto& [k, v] : metadata) meta[k] = v;
    header["__metadata__"] = std::move(meta);
  }
  uint64_t offset = 0;
  for (const auto& [name, t] : sorted) {
    const uint64_t bytes = static_cast<uint64_t>(t.numel()) * t.element_size();
    header[name] = {{"dtype", dtype_name_for(t.scalar_type())},
                    {"shape", t.sizes().vec()},
                    {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  std::string header_text = header.dump();
  // Spaces (valid JSON whitespace) so the data buffer starts 8-byte aligned.
  header_text.append((8 - (8 + header_text.size()) % 8) % 8, ' ');
  const uint64_t header_size = header_text.size();

  write_file_atomic_with(path, [&](const std::string& tmp) {
    std::FILE* f = std::fopen(tmp.c_str(), "wb");
    if (!f) fail("cannot write " + path + ": " + std::strerror(errno));
    bool ok = std::fwrite(&header_size, 1, 8, f) == 8 &&
              std::fwrite(header_text.data(), 1, header_text.size(), f) == header_text.size();
    for (const auto& item : sorted) {
      const torch::Tensor& t = item.second;
      const size_t bytes = static_cast<size_t>(t.numel()) * t.element_size();
      if (ok && bytes > 0) ok = std::fwrite(t.data_ptr(), 1, bytes, f) == bytes;
    }
    const int saved_errno = errno;
    const bool closed = std::fclose(f) == 0;
    if (!ok || !closed) fail("cannot write " + path + ": " + std::strerror(ok ? errno : saved_errno));
  });
}

}  // namespace lathe
