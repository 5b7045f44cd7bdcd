// The agent's config keys: docs/config.md holds the generated table, configs/agent.yaml is
// valid and opens with its command, and a bad key or value is an error naming it.
#include <gtest/gtest.h>

#include "agent/agent.h"
#include "core/atomic_file.h"
#include "core/error.h"

namespace lathe::agent {
namespace {

TEST(AgentConfigKeys, DocsAreUpToDate) {
  EXPECT_NE(read_file("docs/config.md").find(agent_config_schema().markdown()), std::string::npos)
      << "docs/config.md is stale: regenerate its `lathe agent` table with `lathe agent --config-docs`";
}

TEST(AgentConfigKeys, ShippedConfigIsValidAndSaysHowToRunIt) {
  const std::string path = "configs/agent.yaml";
  EXPECT_EQ(read_file(path).rfind("# lathe agent ask --config " + path, 0), 0u);
  const AgentConfig c = agent_config_from(load_config(agent_config_schema(), path, {}));
  const AgentConfig defaults;
  EXPECT_EQ(c.max_attempts, defaults.max_attempts);
  EXPECT_EQ(c.limits.max_rows, defaults.limits.max_rows);
  EXPECT_DOUBLE_EQ(c.limits.timeout_seconds, defaults.limits.timeout_seconds);
  EXPECT_EQ(c.answer_with_model, defaults.answer_with_model);
}

TEST(AgentConfigKeys, OverridesAndErrors) {
  const AgentConfig c =
      agent_config_from(resolve_config(agent_config_schema(), "", "", {"agent.max_attempts=5", "guard.max_rows=7"}));
  EXPECT_EQ(c.max_attempts, 5);
  EXPECT_EQ(c.limits.max_rows, 7);
  EXPECT_THROW(resolve_config(agent_config_schema(), "", "", {"guard.max_row=3"}), Error);
  EXPECT_THROW(resolve_config(agent_config_schema(), "", "", {"agent.max_attempts=0"}), Error);
  EXPECT_THROW(resolve_config(agent_config_schema(), "guard:\n  timeout_seconds: soon\n", "x.yaml", {}), Error);
}

}  // namespace
}  // namespace lathe::agent
