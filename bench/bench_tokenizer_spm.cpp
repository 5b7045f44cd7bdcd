// The SentencePiece side of bench_tokenizer, in its own process: libsentencepiece exports a
// bundled protobuf-lite 3.14 that clashes with the libprotobuf 3.21 LibTorch loads (the
// process crashes in static initialisation), so this binary links sentencepiece and no torch.
// Usage: bench_tokenizer_spm MODEL TEXT_FILE REPEATS
// prints "first_s best_s tokens lines_best_s lines_tokens" (whole text as one string, then
// line by line as spm_encode feeds it).
#include <sentencepiece_processor.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: %s MODEL TEXT_FILE REPEATS\n", argv[0]);
    return 2;
  }
  sentencepiece::SentencePieceProcessor sp;
  if (!sp.Load(argv[1]).ok()) {
    std::fprintf(stderr, "cannot load %s\n", argv[1]);
    return 1;
  }
  std::ifstream in(argv[2], std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  const std::string text = buffer.str();
  const int repeats = std::max(1, std::atoi(argv[3]));
  double first_s = 0, best_s = 1e30;
  size_t tokens = 0;
  for (int r = 0; r < repeats; ++r) {
    std::vector<int> ids;
    const auto start = std::chrono::steady_clock::now();
    sp.Encode(text, &ids);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (r == 0) first_s = s;
    best_s = std::min(best_s, s);
    tokens = ids.size();
  }
  std::vector<std::string> lines;
  for (size_t pos = 0; pos < text.size();) {
    size_t end = text.find('\n', pos);
    end = end == std::string::npos ? text.size() : end + 1;
    lines.push_back(text.substr(pos, end - pos));
    pos = end;
  }
  double lines_best_s = 1e30;
  size_t lines_tokens = 0;
  for (int r = 0; r < repeats; ++r) {
    std::vector<int> ids;
    size_t count = 0;
    const auto start = std::chrono::steady_clock::now();
    for (const std::string& line : lines) {
      sp.Encode(line, &ids);
      count += ids.size();
    }
    lines_best_s = std::min(lines_best_s, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    lines_tokens = count;
  }
  std::printf("%.6f %.6f %zu %.6f %zu\n", first_s, best_s, tokens, lines_best_s, lines_tokens);
  return 0;
}
