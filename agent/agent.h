// The inventory SQL agent: LangGraph's SQL-agent loop written out plainly.
//   prompt  = the shared system prompt (data/format.h) over the live schema with a few
//             stored values per text column, then earlier turns (chat), then the question;
//   loop    : model → SQL from the last <answer> block → guard → execute; on a refusal, an
//             SQL error, a stopped query or a reply without SQL, the problem goes back to the
//             model as a user message and it tries again, up to agent.max_attempts;
//   answer  : composed from the result in the question's language, by template (default)
//             or by asking the model (answer.with_model).
// Every step is traced (trace.h). The model is reached only through the OpenAI-compatible
// API, so `lathe serve` and vLLM are interchangeable behind it.
// Departure from LangGraph's agent: no separate list-tables/get-schema tool calls — the schema
// is small and goes into the system prompt, as in the SFT/GRPO data the adapter learned from.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "agent/executor.h"
#include "agent/trace.h"
#include "core/config.h"
#include "core/openai_client.h"

namespace lathe::agent {

struct AgentConfig {
  int max_attempts = 3;            // model calls per question (1 = no retry)
  int history_turns = 4;           // chat: earlier turns kept in the prompt
  int max_tokens = 512;            // per model reply
  double temperature = 0;
  double request_timeout_seconds = 600;
  int samples_per_column = 3;      // stored values shown per text column
  ExecutorLimits limits;
  bool answer_with_model = false;  // phrase the answer with a second model call
  int answer_rows = 10;            // rows listed in an answer (template or model prompt)
  int answer_max_tokens = 256;
  // Replaces the prompt built from the live schema: a small model fine-tuned on one exact
  // prompt (the pipeline's tiny base) answers only that one.
  std::string system_prompt;
};

// Keys of `lathe agent --config FILE` / `--set key=value` (docs/config.md has the table).
const ConfigSchema& agent_config_schema();
AgentConfig agent_config_from(const Config& config);

// One model call and what became of its SQL.
struct Attempt {
  int number = 0;                  // 1-based
  std::string completion;
  std::string finish_reason;
  std::optional<std::string> sql;  // nullopt when the reply had no <answer> block
  std::string status;              // ok | refused | error | stopped | no_sql
  std::string message;             // the problem fed back to the model; "" when ok
  int64_t rows = 0;
  bool truncated = false;
  double llm_ms = 0, guard_ms = 0, execute_ms = 0;
  TokenUsage usage;
};

// A finished chat turn, for follow-up questions.
struct ChatTurn {
  std::string question;
  std::string completion;  // the reply whose SQL ran
};

struct AgentAnswer {
  std::string run_id;  // the trace's root run
  std::string question, language, model;
  bool ok = false;                 // some attempt's SQL ran
  std::string answer;
  std::string answer_method;       // template | model | failure
  std::string sql;                 // the SQL that ran (or the last one tried)
  data::SqlResult result;
  std::vector<Attempt> attempts;
  TokenUsage usage;                // all model calls, answer phrasing included
  double latency_ms = 0;
  ChatTurn turn() const;           // {question, the successful completion}
};

// {"run_id", "question", "language", "model", "ok", "answer", "answer_method", "sql",
//  "columns", "rows", "truncated", "attempts": [...], "usage", "latency_ms"}
nlohmann::json answer_to_json(const AgentAnswer& answer);

class Agent {
 public:
  // Reads the live schema once. `client`, `executor` and `tracer` must outlive the agent.
  Agent(const OpenAiClient& client, std::string model, SqlExecutor& executor, AgentConfig config,
        Tracer& tracer);

  // Throws OpenAiError when the endpoint fails (after tracing the failed step); every SQL
  // problem is an attempt, not an exception.
  AgentAnswer ask(const std::string& question, const std::vector<ChatTurn>& history = {});

  const std::string& system_prompt() const { return system_prompt_; }
  const AgentConfig& config() const { return config_; }

 private:
  const OpenAiClient& client_;
  std::string model_;
  SqlExecutor& executor_;
  AgentConfig config_;
  Tracer& tracer_;
  std::string system_prompt_;
};

// The message that tells the model what went wrong with its last reply.
std::string feedback_message(const Attempt& attempt);

}  // namespace lathe::agent
