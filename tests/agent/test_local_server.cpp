// The embedded endpoint: `lathe agent --model-dir` spawns `<binary> serve …` on a free
// loopback port and waits for /health. A stand-in executable plays the server: a shell
// script that records its arguments and serves /health with Python's http.server (skipped
// without python3), or one that fails the way an unknown subcommand does.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "agent/local_server.h"
#include "core/atomic_file.h"
#include "core/error.h"
#include "core/openai_client.h"
#include "tests/support/test_support.h"

namespace lathe::agent {
namespace {

std::string write_script(const testing::TempDir& dir, const std::string& name, const std::string& body) {
  const std::string path = dir.file(name);
  write_file_atomic(path, "#!/bin/sh\n" + body);
  ::chmod(path.c_str(), 0755);
  return path;
}

TEST(LocalServer, StartsServeOnAFreePortAndStopsIt) {
  if (std::system("command -v python3 > /dev/null 2>&1") != 0) GTEST_SKIP() << "python3 is missing; skipping";
  testing::TempDir dir;
  std::filesystem::create_directory(dir.file("www"));
  write_file_atomic(dir.file("www/health"), "");
  const std::string script = write_script(dir, "fake-lathe",
                                          "echo \"$@\" > " + dir.file("args") +
                                              "\nwhile [ \"$1\" != --port ]; do shift; done\n"
                                              "exec python3 -m http.server \"$2\" --bind 127.0.0.1 --directory " +
                                              dir.file("www") + "\n");
  LocalServerOptions options;
  options.executable = script;
  options.model_dir = "/models/tiny";
  options.adapters = {{"inventory", "/adapters/sft"}, {"grpo", "/adapters/grpo"}};
  options.extra_args = {"--device", "cpu"};
  options.startup_timeout_seconds = 30;
  std::string endpoint;
  {
    LocalServer server(options);
    endpoint = server.endpoint();
    ASSERT_EQ(endpoint.rfind("http://127.0.0.1:", 0), 0u);
    const std::string port = endpoint.substr(17, endpoint.size() - 17 - 3);
    EXPECT_EQ(read_file(dir.file("args")),
              "serve --model /models/tiny --host 127.0.0.1 --port " + port +
                  " --served-model-name base --lora-modules inventory=/adapters/sft --lora-modules grpo=/adapters/grpo "
                  "--device cpu\n");
    OpenAiClientOptions client;
    client.endpoint = endpoint;
    EXPECT_TRUE(OpenAiClient(client).healthy());
  }
  OpenAiClientOptions client;
  client.endpoint = endpoint;
  EXPECT_FALSE(OpenAiClient(client).healthy(0.5)) << "the server outlived its LocalServer";
}

TEST(LocalServer, AChildThatExitsEarlyIsAnErrorWithItsOutput) {
  testing::TempDir dir;
  LocalServerOptions options;
  options.model_dir = "/models/tiny";
  options.executable = write_script(dir, "no-serve",
                                    "echo 'The following argument was not expected: serve' >&2\n"
                                    "echo 'Run with --help for more information.' >&2\nexit 109\n");
  try {
    LocalServer server(options);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()),
              "`lathe serve` exited with status 109 before it was ready (The following argument was not expected: "
              "serve | Run with --help for more information.); to use a server that is already running, give "
              "--endpoint URL instead");
  }
  options.executable = dir.file("missing");
  EXPECT_THROW(LocalServer{options}, Error);
}

TEST(LocalServer, AdapterArguments) {
  const auto a = parse_adapter_args({"runs/sft/adapter", "grpo=runs/grpo/adapter", "runs/other/"});
  ASSERT_EQ(a.size(), 3u);
  EXPECT_EQ(a[0], std::make_pair(std::string("inventory"), std::string("runs/sft/adapter")));
  EXPECT_EQ(a[1], std::make_pair(std::string("grpo"), std::string("runs/grpo/adapter")));
  EXPECT_EQ(a[2].first, "other");
  EXPECT_THROW(parse_adapter_args({"x=a/b", "x=c/d"}), Error);
  EXPECT_THROW(parse_adapter_args({"name="}), Error);
}

}  // namespace
}  // namespace lathe::agent
