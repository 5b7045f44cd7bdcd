// safetensors reader/writer and checkpoint folders: round trips over every dtype, the header
// layout, each malformed-header case (bytes written by hand), truncation at every length,
// shards and their index, and the stories260K fixture.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>

#include "core/atomic_file.h"
#include "core/error.h"
#include "model/safetensors.h"
#include "tests/support/test_support.h"

namespace lathe {
namespace {

namespace fs = std::filesystem;
using lathe::testing::TempDir;

// 8-byte little-endian header length, the header text, then `data_bytes` bytes of data.
std::string raw_file(const std::string& header, size_t data_bytes) {
  const uint64_t n = header.size();
  std::string out(reinterpret_cast<const char*>(&n), 8);
  out += header;
  out.append(data_bytes, '\0');
  return out;
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// Opens `path` and returns the lathe::Error message; fails the test if it opens.
std::string open_error(const std::string& path) {
  try {
    SafetensorsFile file(path);
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << path << " opened but should have been rejected";
  return "";
}

NamedTensors sample_tensors() {
  torch::manual_seed(0);
  NamedTensors t;
  t.emplace_back("f64", torch::randn({2, 3}, torch::kFloat64));
  t.emplace_back("f32", torch::randn({3, 4}));
  t.emplace_back("f16", torch::randn({5}).to(torch::kFloat16));
  t.emplace_back("bf16", torch::randn({2, 2, 2}).to(torch::kBFloat16));
  t.emplace_back("i64", torch::arange(-3, 3, torch::kInt64));
  t.emplace_back("i32", torch::tensor({-7, 0, 2147483647}, torch::kInt32));
  t.emplace_back("i16", torch::tensor({-32768, 5}, torch::kInt16));
  t.emplace_back("i8", torch::tensor({-128, 127}, torch::kInt8));
  t.emplace_back("u8", torch::tensor({0, 255, 7}, torch::kUInt8));
  t.emplace_back("bool", torch::tensor({true, false, true}));
  t.emplace_back("scalar", torch::tensor(3.5));
  t.emplace_back("empty", torch::zeros({0}));
  t.emplace_back("empty_3d", torch::zeros({2, 0, 3}, torch::kInt32));
  // Non-contiguous: the writer must store the logical (transposed) order.
  t.emplace_back("transposed", torch::arange(12, torch::kFloat32).reshape({3, 4}).t());
  return t;
}

TEST(Safetensors, RoundTripsEveryDtypeShapeAndMetadata) {
  TempDir dir;
  const auto tensors = sample_tensors();
  const std::map<std::string, std::string> metadata = {{"format", "pt"}, {"note", "hello \"world\""}};
  save_safetensors(dir.file("a.safetensors"), tensors, metadata);

  SafetensorsFile file(dir.file("a.safetensors"));
  EXPECT_EQ(file.metadata(), metadata);
  auto names = file.names();
  EXPECT_TRUE(std::is_sorted(names.begin(), names.end()));
  ASSERT_EQ(names.size(), tensors.size());
  for (const auto& [name, expected] : tensors) {
    SCOPED_TRACE(name);
    ASSERT_TRUE(file.contains(name));
    const torch::Tensor got = file.load(name);
    EXPECT_EQ(got.scalar_type(), expected.scalar_type());
    EXPECT_EQ(got.sizes(), expected.sizes());
    EXPECT_TRUE(got.device().is_cpu());
    EXPECT_TRUE(torch::equal(got, expected));
  }
  EXPECT_EQ(file.entry("bf16").dtype, "BF16");
  EXPECT_EQ(file.entry("scalar").shape, std::vector<int64_t>{});
  EXPECT_EQ(file.entry("empty_3d").shape, (std::vector<int64_t>{2, 0, 3}));
  EXPECT_EQ(file.entry("empty").begin, file.entry("empty").end);
}

TEST(Safetensors, LoadedTensorOwnsItsMemory) {
  TempDir dir;
  torch::Tensor t;
  {
    save_safetensors(dir.file("a.safetensors"), {{"x", torch::arange(4, torch::kFloat32)}});
    SafetensorsFile file(dir.file("a.safetensors"));
    t = file.load("x");
  }  // unmapped here; the tensor must still be valid
  EXPECT_TRUE(torch::equal(t, torch::arange(4, torch::kFloat32)));
}

TEST(Safetensors, HeaderIsPaddedSortedAndDataFollowsNameOrder) {
  TempDir dir;
  // Names chosen so the header length varies; each must pad 8 + N to a multiple of 8.
  for (const std::string name : {"a", "ab", "abc", "abcd", "abcde", "abcdef", "abcdefg", "abcdefgh"}) {
    SCOPED_TRACE(name);
    const std::string path = dir.file(name + ".safetensors");
    save_safetensors(path, {{"zeta", torch::ones({3})}, {name, torch::zeros({2}, torch::kInt8)}});
    const std::string bytes = read_file(path);
    uint64_t n = 0;
    std::memcpy(&n, bytes.data(), 8);
    EXPECT_EQ((8 + n) % 8, 0u);
    const std::string header = bytes.substr(8, n);
    const auto j = nlohmann::json::parse(header);
    EXPECT_EQ(j["__metadata__"], (nlohmann::json{{"format", "pt"}}));
    // "a..." sorts before "zeta", so it comes first in the data buffer.
    EXPECT_EQ(j[name]["data_offsets"], (nlohmann::json{0, 2}));
    EXPECT_EQ(j["zeta"]["data_offsets"], (nlohmann::json{2, 14}));
    EXPECT_EQ(bytes.size(), 8 + n + 14);
    // Padding is trailing spaces only.
    EXPECT_EQ(header.find_last_not_of(' '), header.rfind('}'));
  }
}

TEST(Safetensors, EmptyMetadataIsOmittedAndNoTensorsIsValid) {
  TempDir dir;
  save_safetensors(dir.file("e.safetensors"), {}, {});
  SafetensorsFile file(dir.file("e.safetensors"));
  EXPECT_TRUE(file.names().empty());
  EXPECT_TRUE(file.metadata().empty());
}

TEST(Safetensors, WriterRejectsDuplicateAndReservedNames) {
  TempDir dir;
  EXPECT_THROW(save_safetensors(dir.file("d.safetensors"), {{"x", torch::ones(1)}, {"x", torch::ones(1)}}), Error);
  EXPECT_THROW(save_safetensors(dir.file("d.safetensors"), {{"__metadata__", torch::ones(1)}}), Error);
  EXPECT_FALSE(fs::exists(dir.file("d.safetensors")));
}

TEST(Safetensors, MissingTensorErrorNamesFileAndTensor) {
  TempDir dir;
  save_safetensors(dir.file("m.safetensors"), {{"x", torch::ones(1)}});
  SafetensorsFile file(dir.file("m.safetensors"));
  try {
    file.load("model.norm.weight");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("m.safetensors"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("'model.norm.weight'"), std::string::npos) << e.what();
  }
  EXPECT_THROW(file.entry("nope"), Error);
}

struct MalformedCase {
  const char* label;
  std::string header;
  size_t data_bytes;
  std::vector<std::string> expected;  // substrings beyond the file name
};

TEST(Safetensors, EveryMalformedHeaderIsAnErrorNamingFileAndTensor) {
  const std::vector<MalformedCase> cases = {
      {"invalid_json", "{\"w\": {\"dtype\": ", 0, {"not valid JSON"}},
      {"not_object", "[1, 2]", 0, {"must be a JSON object"}},
      {"entry_not_object", R"({"w": 3})", 0, {"'w'", "entry must be an object"}},
      {"missing_dtype", R"({"w": {"shape": [1], "data_offsets": [0, 4]}})", 4, {"'w'", "missing 'dtype'"}},
      {"missing_shape", R"({"w": {"dtype": "F32", "data_offsets": [0, 4]}})", 4, {"'w'", "missing 'shape'"}},
      {"missing_offsets", R"({"w": {"dtype": "F32", "shape": [1]}})", 4, {"'w'", "missing 'data_offsets'"}},
      {"dtype_not_string", R"({"w": {"dtype": 5, "shape": [1], "data_offsets": [0, 4]}})", 4, {"'w'", "'dtype'"}},
      {"shape_not_array", R"({"w": {"dtype": "F32", "shape": "1", "data_offsets": [0, 4]}})", 4, {"'w'", "'shape'"}},
      {"offsets_not_array", R"({"w": {"dtype": "F32", "shape": [1], "data_offsets": "0,4"}})", 4,
       {"'w'", "data_offsets"}},
      {"offsets_one_element", R"({"w": {"dtype": "F32", "shape": [1], "data_offsets": [4]}})", 4,
       {"'w'", "data_offsets"}},
      {"offsets_three_elements", R"({"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4, 8]}})", 8,
       {"'w'", "data_offsets"}},
      {"negative_offset", R"({"w": {"dtype": "F32", "shape": [1], "data_offsets": [-4, 0]}})", 4,
       {"'w'", "non-negative"}},
      {"float_offset", R"({"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4.0]}})", 4,
       {"'w'", "non-negative integers"}},
      {"negative_shape", R"({"w": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}})", 4,
       {"'w'", "shape[0]"}},
      {"float_shape", R"({"w": {"dtype": "F32", "shape": [1.5], "data_offsets": [0, 4]}})", 4, {"'w'", "shape[0]"}},
      {"string_shape_dim", R"({"w": {"dtype": "F32", "shape": [2, "2"], "data_offsets": [0, 16]}})", 16,
       {"'w'", "shape[1]"}},
      {"unknown_dtype", R"({"w": {"dtype": "F128", "shape": [1], "data_offsets": [0, 16]}})", 16,
       {"'w'", "unknown dtype 'F128'", "BF16"}},
      {"begin_after_end", R"({"w": {"dtype": "F32", "shape": [1], "data_offsets": [4, 0]}})", 4,
       {"'w'", "begin > end"}},
      {"end_past_buffer", R"({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}})", 4,
       {"'w'", "past the data buffer"}},
      {"size_mismatch", R"({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 12]}})", 12,
       {"tensor 'w': data_offsets [0, 12] do not match shape [4] x F32 (16 bytes)"}},
      {"shape_overflow",
       R"({"w": {"dtype": "F32", "shape": [4611686018427387904, 4611686018427387904], "data_offsets": [0, 4]}})", 4,
       {"'w'", "overflowing"}},
      {"overlap",
       R"({"v": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
           "w": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}})",
       12, {"'w'", "overlap tensor 'v'"}},
      {"duplicate_region",
       R"({"v": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},
           "w": {"dtype": "I32", "shape": [1], "data_offsets": [0, 4]}})",
       4, {"'w'", "overlap tensor 'v'"}},
      {"gap",
       R"({"v": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},
           "w": {"dtype": "F32", "shape": [1], "data_offsets": [8, 12]}})",
       12, {"'w'", "gap of 4 bytes after tensor 'v'"}},
      {"gap_at_start", R"({"w": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}})", 8,
       {"'w'", "gap of 4 bytes"}},
      {"trailing_bytes", R"({"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}})", 8,
       {"'w'", "4 bytes after"}},
      {"metadata_value_not_string", R"({"__metadata__": {"format": 1}})", 0, {"__metadata__", "'format'"}},
      {"metadata_not_object", R"({"__metadata__": "pt"})", 0, {"__metadata__"}},
      {"deep_nesting", std::string(1000, '[') + std::string(1000, ']'), 0, {"nested deeper"}},
  };
  TempDir dir;
  for (const auto& c : cases) {
    SCOPED_TRACE(c.label);
    const std::string file_name = std::string("bad_") + c.label + ".safetensors";
    write_bytes(dir.file(file_name), raw_file(c.header, c.data_bytes));
    const std::string message = open_error(dir.file(file_name));
    EXPECT_NE(message.find(file_name), std::string::npos) << message;
    for (const auto& s : c.expected) EXPECT_NE(message.find(s), std::string::npos) << message;
    EXPECT_EQ(message.find('\n'), std::string::npos) << "one line: " << message;
  }
}

TEST(Safetensors, BadLengthPrefixesAreErrors) {
  TempDir dir;
  write_bytes(dir.file("short.safetensors"), "abc");
  EXPECT_NE(open_error(dir.file("short.safetensors")).find("short.safetensors"), std::string::npos);
  write_bytes(dir.file("empty.safetensors"), "");
  EXPECT_NE(open_error(dir.file("empty.safetensors")).find("too short"), std::string::npos);

  // Header length beyond the file.
  std::string bytes = raw_file("{}", 0);
  const uint64_t too_long = 1000;
  std::memcpy(bytes.data(), &too_long, 8);
  write_bytes(dir.file("long.safetensors"), bytes);
  EXPECT_NE(open_error(dir.file("long.safetensors")).find("past the end of the file"), std::string::npos);

  // Header length over the 100 MB cap (checked before anything is read).
  const uint64_t huge = 200'000'000;
  std::memcpy(bytes.data(), &huge, 8);
  write_bytes(dir.file("huge.safetensors"), bytes);
  EXPECT_NE(open_error(dir.file("huge.safetensors")).find("100 MB"), std::string::npos);
  const uint64_t max = UINT64_MAX;
  std::memcpy(bytes.data(), &max, 8);
  write_bytes(dir.file("max.safetensors"), bytes);
  EXPECT_NE(open_error(dir.file("max.safetensors")).find("max.safetensors"), std::string::npos);

  EXPECT_NE(open_error(dir.file("absent.safetensors")).find("absent.safetensors"), std::string::npos);
  EXPECT_THROW(SafetensorsFile{dir.path()}, Error);  // a directory
}

TEST(Safetensors, EveryTruncationThrowsAndNeverCrashes) {
  TempDir dir;
  save_safetensors(dir.file("ok.safetensors"),
                   {{"a", torch::arange(3, torch::kFloat32)}, {"b", torch::ones({2, 2}, torch::kBFloat16)},
                    {"c", torch::tensor(true)}});
  const std::string bytes = read_file(dir.file("ok.safetensors"));
  ASSERT_NO_THROW(SafetensorsFile{dir.file("ok.safetensors")});
  for (size_t len = 0; len < bytes.size(); ++len) {
    SCOPED_TRACE(len);
    write_bytes(dir.file("cut.safetensors"), bytes.substr(0, len));
    EXPECT_THROW(SafetensorsFile{dir.file("cut.safetensors")}, Error);
  }
  // One byte too many is also a defect (the tensors no longer cover the buffer).
  write_bytes(dir.file("cut.safetensors"), bytes + "x");
  EXPECT_THROW(SafetensorsFile{dir.file("cut.safetensors")}, Error);
}

TEST(Safetensors, CorruptedHeaderBytesEitherLoadOrThrowLatheError) {
  TempDir dir;
  save_safetensors(dir.file("ok.safetensors"), {{"a", torch::arange(3, torch::kFloat32)}, {"b", torch::ones(2)}});
  const std::string bytes = read_file(dir.file("ok.safetensors"));
  uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  const char replacements[] = {'\0', '"', '{', ']', '9', '-', '.', ' ', '\xff'};
  for (size_t pos = 0; pos < 8 + n; ++pos) {
    for (char r : replacements) {
      std::string mutated = bytes;
      mutated[pos] = r;
      write_bytes(dir.file("mut.safetensors"), mutated);
      try {
        SafetensorsFile file(dir.file("mut.safetensors"));
        for (const auto& name : file.names()) file.load(name);
      } catch (const Error&) {
        // expected for most mutations
      }
    }
  }
}

TEST(Safetensors, DtypesWithoutLibTorchTypeOpenButDoNotLoad) {
  TempDir dir;
  write_bytes(dir.file("u16.safetensors"),
              raw_file(R"({"u": {"dtype": "U16", "shape": [2], "data_offsets": [0, 4]},
                           "x": {"dtype": "U8", "shape": [1], "data_offsets": [4, 5]}})",
                       5));
  SafetensorsFile file(dir.file("u16.safetensors"));
  EXPECT_EQ(file.load("x").item<uint8_t>(), 0);
  try {
    file.load("u");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'u'"), std::string::npos) << e.what();
  }
}

TEST(Safetensors, BoolBytesOtherThanZeroOrOneAreRejected) {
  TempDir dir;
  std::string bytes = raw_file(R"({"flags": {"dtype": "BOOL", "shape": [2], "data_offsets": [0, 2]}})", 2);
  bytes[bytes.size() - 1] = 2;
  write_bytes(dir.file("b.safetensors"), bytes);
  SafetensorsFile file(dir.file("b.safetensors"));
  EXPECT_THROW(file.load("flags"), Error);
}

TEST(Checkpoint, SingleFileRoundTrip) {
  TempDir dir;
  const auto tensors = sample_tensors();
  save_checkpoint_tensors(dir.path(), tensors);
  EXPECT_TRUE(fs::exists(dir.file("model.safetensors")));
  EXPECT_FALSE(fs::exists(dir.file("model.safetensors.index.json")));
  CheckpointReader reader(dir.path());
  ASSERT_EQ(reader.names().size(), tensors.size());
  for (const auto& [name, t] : tensors) EXPECT_TRUE(torch::equal(reader.load(name), t)) << name;
  EXPECT_EQ(reader.file_of("f32"), dir.file("model.safetensors"));
}

TEST(Checkpoint, ShardedRoundTripWritesIndexAndShards) {
  TempDir dir;
  NamedTensors tensors;
  for (int i = 0; i < 5; ++i) {
    tensors.emplace_back("model.layers." + std::to_string(i) + ".weight", torch::full({10}, float(i)));  // 40 B
  }
  save_checkpoint_tensors(dir.path(), tensors, /*max_shard_bytes=*/100);  // 2 tensors per shard

  for (const char* shard : {"model-00001-of-00003.safetensors", "model-00002-of-00003.safetensors",
                            "model-00003-of-00003.safetensors"}) {
    EXPECT_TRUE(fs::exists(dir.file(shard))) << shard;
  }
  EXPECT_FALSE(fs::exists(dir.file("model.safetensors")));
  const auto index = nlohmann::json::parse(read_file(dir.file("model.safetensors.index.json")));
  EXPECT_EQ(index["metadata"]["total_size"], 200);
  EXPECT_EQ(index["weight_map"].size(), 5u);
  EXPECT_EQ(index["weight_map"]["model.layers.4.weight"], "model-00003-of-00003.safetensors");

  CheckpointReader reader(dir.path());
  EXPECT_EQ(reader.names().size(), 5u);
  for (const auto& [name, t] : tensors) EXPECT_TRUE(torch::equal(reader.load(name), t)) << name;
  EXPECT_EQ(reader.entry("model.layers.0.weight").shape, std::vector<int64_t>{10});
  EXPECT_EQ(fs::path(reader.file_of("model.layers.2.weight")).filename(), "model-00002-of-00003.safetensors");

  // Saving unsharded into the same folder removes the shards and index.
  save_checkpoint_tensors(dir.path(), tensors);
  EXPECT_FALSE(fs::exists(dir.file("model.safetensors.index.json")));
  EXPECT_FALSE(fs::exists(dir.file("model-00001-of-00003.safetensors")));
  EXPECT_EQ(CheckpointReader(dir.path()).names().size(), 5u);
}

TEST(Checkpoint, OversizedTensorGetsItsOwnShard) {
  TempDir dir;
  save_checkpoint_tensors(dir.path(), {{"small", torch::ones(2)}, {"big", torch::ones(100)}, {"tail", torch::ones(2)}},
                          64);
  const auto index = nlohmann::json::parse(read_file(dir.file("model.safetensors.index.json")));
  EXPECT_EQ(index["weight_map"]["small"], "model-00001-of-00003.safetensors");
  EXPECT_EQ(index["weight_map"]["big"], "model-00002-of-00003.safetensors");
  EXPECT_EQ(index["weight_map"]["tail"], "model-00003-of-00003.safetensors");
}

std::string reader_error(const std::string& dir) {
  try {
    CheckpointReader reader(dir);
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << dir << " opened but should have been rejected";
  return "";
}

TEST(Checkpoint, IndexErrorsNameTheIndexAndTensor) {
  TempDir dir;
  NamedTensors tensors = {{"a.weight", torch::ones(10)}, {"b.weight", torch::ones(10)}};
  save_checkpoint_tensors(dir.path(), tensors, 40);
  const std::string index_path = dir.file("model.safetensors.index.json");
  const auto index = nlohmann::json::parse(read_file(index_path));

  // A tensor listed in the index but absent from its shard.
  auto moved = index;
  moved["weight_map"]["a.weight"] = "model-00002-of-00002.safetensors";
  write_file_atomic(index_path, moved.dump());
  std::string message = reader_error(dir.path());
  EXPECT_NE(message.find("model.safetensors.index.json"), std::string::npos) << message;
  EXPECT_NE(message.find("'a.weight'"), std::string::npos) << message;
  EXPECT_NE(message.find("absent"), std::string::npos) << message;

  // A shard that does not exist.
  auto missing = index;
  missing["weight_map"]["b.weight"] = "model-00009-of-00009.safetensors";
  write_file_atomic(index_path, missing.dump());
  message = reader_error(dir.path());
  EXPECT_NE(message.find("model.safetensors.index.json"), std::string::npos) << message;
  EXPECT_NE(message.find("'b.weight'"), std::string::npos) << message;
  EXPECT_NE(message.find("model-00009-of-00009.safetensors is missing"), std::string::npos) << message;

  // A shard outside the folder.
  auto escaping = index;
  escaping["weight_map"]["b.weight"] = "../model-00002-of-00002.safetensors";
  write_file_atomic(index_path, escaping.dump());
  EXPECT_NE(reader_error(dir.path()).find("'b.weight'"), std::string::npos);

  write_file_atomic(index_path, "{\"weight_map\": ");
  EXPECT_NE(reader_error(dir.path()).find("not valid JSON"), std::string::npos);
  write_file_atomic(index_path, "{\"metadata\": {}}");
  EXPECT_NE(reader_error(dir.path()).find("weight_map"), std::string::npos);
  write_file_atomic(index_path, R"({"weight_map": {"a.weight": 3}})");
  EXPECT_NE(reader_error(dir.path()).find("'a.weight'"), std::string::npos);

  // Restored, it loads again; an unknown name is an error naming it.
  write_file_atomic(index_path, index.dump());
  CheckpointReader reader(dir.path());
  EXPECT_TRUE(torch::equal(reader.load("b.weight"), torch::ones(10)));
  try {
    reader.load("c.weight");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'c.weight'"), std::string::npos) << e.what();
  }
}

TEST(Checkpoint, EmptyFolderIsAnError) {
  TempDir dir;
  EXPECT_NE(reader_error(dir.path()).find("no model.safetensors"), std::string::npos);
}

TEST(Checkpoint, LoadsStories260KFixture) {
  LATHE_REQUIRE_FIXTURE(model_dir, "stories260K-hf");
  CheckpointReader reader(model_dir);
  const auto names = reader.names();
  EXPECT_EQ(names.size(), 47u);
  for (const auto& name : names) EXPECT_EQ(reader.entry(name).dtype, "F32") << name;
  const torch::Tensor embed = reader.load("model.embed_tokens.weight");
  EXPECT_EQ(embed.sizes(), (std::vector<int64_t>{512, 64}));
  EXPECT_EQ(embed.scalar_type(), torch::kFloat32);
  EXPECT_TRUE(torch::isfinite(embed).all().item<bool>());
  EXPECT_GT(embed.abs().sum().item<float>(), 0.0f);

  // Re-saving it reproduces every tensor.
  TempDir out;
  NamedTensors all;
  for (const auto& name : names) all.emplace_back(name, reader.load(name));
  save_checkpoint_tensors(out.path(), all, 100'000);
  CheckpointReader copy(out.path());
  EXPECT_EQ(copy.names(), names);
  for (const auto& name : names) EXPECT_TRUE(torch::equal(copy.load(name), reader.load(name))) << name;
}

}  // namespace
}  // namespace lathe
