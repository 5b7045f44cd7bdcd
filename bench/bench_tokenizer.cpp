// Tokenizer throughput: byte-level BPE (model/bpe_tokenizer.h) against libsentencepiece on
// the same ~1 MB mixed text (English, Chinese, SQL, numbers), generated deterministically.
// BPE uses GPT-2 (../shared/fixtures/tokenizers/gpt2) when present, else a tokenizer trained
// here; SentencePiece uses the llama2-spm tokenizer.model, else tok512.model, and runs in the
// helper bench_tokenizer_spm (next to this binary) because libsentencepiece and LibTorch
// cannot share a process (see bench/CMakeLists.txt).
// Run from the project root: build-bpe/bench/bench_tokenizer
// Each side encodes the text `repeats` times; the first (cold-cache) pass and the best pass
// are both reported, since the BPE cache makes repeated text cheaper.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <filesystem>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "model/bpe_tokenizer.h"
#include "model/bpe_trainer.h"

namespace {

std::string mixed_text(size_t target_bytes) {
  const std::vector<std::string> english = {"the", "quick", "brown", "fox", "jumps", "over", "lazy", "dog", "vehicle",
                                            "inventory", "price", "average", "dealer", "shipping", "customer", "model",
                                            "It's", "they're", "won't", "Shanghai", "Beijing", "report", "quarterly"};
  const std::vector<std::string> chinese = {"宝马", "奔驰", "库存", "价格", "平均", "车辆", "上海", "北京", "还有", "几辆",
                                            "在库", "以后", "接车", "的", "是", "我们", "客户", "订单"};
  const std::vector<std::string> sql = {
      "SELECT COUNT(*) FROM vehicles WHERE brand = '宝马' AND status = 'in_stock';",
      "SELECT AVG(price) FROM listings WHERE city = 'Shanghai' GROUP BY model ORDER BY 1 DESC LIMIT 10;",
      "UPDATE orders SET state = 'shipped' WHERE order_id IN (SELECT id FROM pending WHERE age > 30);"};
  std::mt19937 rng(2024);
  auto pick = [&](const std::vector<std::string>& v) { return v[rng() % v.size()]; };
  std::string text;
  while (text.size() < target_bytes) {
    switch (rng() % 4) {
      case 0:
        for (int i = 0, n = 5 + rng() % 15; i < n; ++i) text += (i ? " " : "") + pick(english);
        text += ". ";
        break;
      case 1:
        for (int i = 0, n = 4 + rng() % 12; i < n; ++i) text += pick(chinese);
        text += "。\n";
        break;
      case 2: text += pick(sql) + "\n"; break;
      default:
        text += std::to_string(rng() % 1000000) + "." + std::to_string(rng() % 100) + " CNY, " +
                std::to_string(rng() % 10000) + " units\n";
    }
  }
  return text;
}

struct Timing {
  double first_s = 0, best_s = 1e30;
  size_t tokens = 0;
  double lines_best_s = 0;  // the text encoded line by line
  size_t lines_tokens = 0;
};

Timing time_encode(const std::function<size_t()>& encode, int repeats) {
  Timing t;
  for (int r = 0; r < repeats; ++r) {
    const auto start = std::chrono::steady_clock::now();
    t.tokens = encode();
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (r == 0) t.first_s = s;
    t.best_s = std::min(t.best_s, s);
  }
  return t;
}

}  // namespace

int main() {
  namespace fs = std::filesystem;
  const std::string text = mixed_text(1 << 20);
  const double mb = text.size() / 1e6;
  const int repeats = 5;

  // --- BPE ---
  const fs::path bpe_dir = fs::temp_directory_path() / ("lathe-bench-bpe-" + std::to_string(getpid()));
  fs::create_directories(bpe_dir);
  const std::string gpt2 = "../shared/fixtures/tokenizers/gpt2";
  std::string bpe_name;
  if (fs::exists(gpt2 + "/encoder.json") && fs::exists(gpt2 + "/vocab.bpe")) {
    lathe::save_bpe_model(lathe::gpt2_spec_from_files(gpt2 + "/encoder.json", gpt2 + "/vocab.bpe"), bpe_dir);
    bpe_name = "GPT-2 (fixture)";
  } else {
    lathe::BpeTrainOptions options;
    options.num_merges = 1000;
    lathe::save_bpe_model(lathe::train_bpe(text.substr(0, 200000), options), bpe_dir);
    bpe_name = "self-trained (1000 merges, Qwen2 split)";
  }
  auto bpe = lathe::load_bpe_tokenizer(bpe_dir);
  fs::remove_all(bpe_dir);
  Timing bpe_t = time_encode([&] { return bpe->encode(text).size(); }, repeats);
  std::vector<std::string> lines;
  for (size_t pos = 0; pos < text.size();) {
    size_t end = text.find('\n', pos);
    end = end == std::string::npos ? text.size() : end + 1;
    lines.push_back(text.substr(pos, end - pos));
    pos = end;
  }
  const Timing bpe_lines = time_encode(
      [&] {
        size_t count = 0;
        for (const std::string& line : lines) count += bpe->encode(line).size();
        return count;
      },
      repeats);
  bpe_t.lines_best_s = bpe_lines.best_s;
  bpe_t.lines_tokens = bpe_lines.tokens;
  if (bpe->decode(bpe->encode(text)) != text) {
    std::fprintf(stderr, "BPE round trip failed\n");
    return 1;
  }

  // --- SentencePiece ---
  std::string spm_path = "../shared/fixtures/tokenizers/llama2-spm/tokenizer.model";
  if (!fs::exists(spm_path)) spm_path = "../shared/fixtures/tokenizers/tok512-spm/tok512.model";
  std::printf("text: %zu bytes (English, Chinese, SQL, numbers); %d passes each\n", text.size(), repeats);
  std::printf("%-44s %8s %10s %10s %15s\n", "tokenizer", "tokens", "cold MB/s", "best MB/s", "per-line MB/s");
  std::printf("%-44s %8zu %10.2f %10.2f %15.2f\n", ("bpe: " + bpe_name).c_str(), bpe_t.tokens, mb / bpe_t.first_s,
              mb / bpe_t.best_s, mb / bpe_t.lines_best_s);
  if (!fs::exists(spm_path)) {
    std::printf("sentencepiece: no model in ../shared/fixtures; ratio not measured\n");
    return 0;
  }
  const fs::path text_file = fs::temp_directory_path() / ("lathe-bench-text-" + std::to_string(getpid()));
  std::ofstream(text_file, std::ios::binary) << text;
  const fs::path helper = fs::read_symlink("/proc/self/exe").parent_path() / "bench_tokenizer_spm";
  const std::string command =
      helper.string() + " " + spm_path + " " + text_file.string() + " " + std::to_string(repeats);
  Timing sp_t;
  FILE* pipe = popen(command.c_str(), "r");
  const bool ok = pipe && std::fscanf(pipe, "%lf %lf %zu %lf %zu", &sp_t.first_s, &sp_t.best_s, &sp_t.tokens,
                                    &sp_t.lines_best_s, &sp_t.lines_tokens) == 5;
  if (pipe) pclose(pipe);
  fs::remove(text_file);
  if (!ok) {
    std::fprintf(stderr, "%s failed\n", command.c_str());
    return 1;
  }
  std::printf("%-44s %8zu %10.2f %10.2f %15.2f\n", ("sentencepiece: " + fs::path(spm_path).filename().string()).c_str(),
              sp_t.tokens, mb / sp_t.first_s, mb / sp_t.best_s, mb / sp_t.lines_best_s);
  std::printf("bpe / sentencepiece speed: cold %.2fx, best %.2fx, per-line %.2fx\n", sp_t.first_s / bpe_t.first_s,
              sp_t.best_s / bpe_t.best_s, sp_t.lines_best_s / bpe_t.lines_best_s);
  return 0;
}
