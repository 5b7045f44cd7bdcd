// fuzz_regressions: feeds files through a fuzz target without libFuzzer, so every build (and
// ctest) replays the seed corpus and each committed crash input.
//   fuzz_regressions TARGET PATH...   every file under each PATH (a file or a folder), sorted
//   fuzz_regressions --list           the targets and what each parses
//   --verbose                         print each input's name and every clean rejection
// Exits 1 when any input escapes with an exception other than lathe::Error or takes longer
// than --max-seconds (default 10, as scripts/fuzz.sh's -timeout); a crash or sanitizer report
// ends the process as it would under libFuzzer. Each finding is printed with its file.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "tests/fuzz/fuzz_target.h"

namespace fs = std::filesystem;
using lathe::fuzz::FuzzTarget;

namespace {

std::vector<fs::path> input_files(const std::vector<std::string>& roots) {
  std::vector<fs::path> files;
  for (const auto& root : roots) {
    if (fs::is_regular_file(root)) {
      files.emplace_back(root);
      continue;
    }
    if (!fs::is_directory(root)) continue;  // a target may have no regressions yet
    for (const auto& entry : fs::recursive_directory_iterator(root))
      if (entry.is_regular_file()) files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  return files;
}

int usage() {
  std::fprintf(stderr, "usage: fuzz_regressions [--verbose] [--max-seconds S] TARGET PATH...\n       fuzz_regressions --list\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.size() == 1 && args[0] == "--list") {
    for (const auto& t : lathe::fuzz::fuzz_targets()) std::printf("%-20s %s\n", t.name, t.parses);
    return 0;
  }
  double max_seconds = 10;
  bool verbose = false;
  while (!args.empty() && args[0].rfind("--", 0) == 0) {
    if (args[0] == "--verbose") {
      verbose = true;
      args.erase(args.begin());
    } else if (args[0] == "--max-seconds" && args.size() >= 2) {
      max_seconds = std::stod(args[1]);
      args.erase(args.begin(), args.begin() + 2);
    } else {
      return usage();
    }
  }
  if (args.size() < 2) return usage();
  const FuzzTarget* target = lathe::fuzz::find_fuzz_target(args[0]);
  if (!target) {
    std::fprintf(stderr, "fuzz_regressions: unknown target '%s' (--list shows them)\n", args[0].c_str());
    return 2;
  }
  const std::vector<fs::path> files = input_files({args.begin() + 1, args.end()});
  if (files.empty()) {
    std::fprintf(stderr, "fuzz_regressions: no input files under the given paths\n");
    return 1;
  }

  lathe::fuzz::prepare_fuzzing();
  lathe::fuzz::set_verbose_rejections(verbose);
  int findings = 0;
  double slowest = 0;
  fs::path slowest_file;
  for (const auto& file : files) {
    std::ifstream in(file, std::ios::binary);
    const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (verbose) std::printf("%s\n", file.c_str());
    const auto start = std::chrono::steady_clock::now();
    try {
      lathe::fuzz::run_fuzz_input(*target, reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
    } catch (const std::exception& e) {
      std::printf("FINDING %s: %s escaped: %s\n", file.c_str(), lathe::fuzz::current_exception_type().c_str(), e.what());
      ++findings;
    } catch (...) {
      std::printf("FINDING %s: %s escaped\n", file.c_str(), lathe::fuzz::current_exception_type().c_str());
      ++findings;
    }
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (seconds > max_seconds) {
      std::printf("FINDING %s: took %.1f s (limit %.1f s)\n", file.c_str(), seconds, max_seconds);
      ++findings;
    }
    if (seconds > slowest) slowest = seconds, slowest_file = file;
  }
  std::printf("%s: %zu inputs, %d findings; slowest %.3f s (%s)\n", target->name, files.size(), findings, slowest,
              slowest_file.filename().c_str());
  return findings ? 1 : 0;
}
