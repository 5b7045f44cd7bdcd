// The agent loop (see agent.h).
#include "agent/agent.h"

#include <algorithm>
#include <chrono>

#include "agent/answer.h"
#include "core/log.h"
#include "data/format.h"

namespace lathe::agent {

namespace {

using Clock = std::chrono::steady_clock;

nlohmann::json usage_json(const TokenUsage& u) {
  return {{"prompt", u.prompt_tokens}, {"completion", u.completion_tokens}, {"total", u.total_tokens}};
}

void add_usage(TokenUsage& total, const TokenUsage& u) {
  total.prompt_tokens += u.prompt_tokens;
  total.completion_tokens += u.completion_tokens;
  total.total_tokens += u.total_tokens;
}

nlohmann::json messages_json(const std::vector<ApiMessage>& messages) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& m : messages) out.push_back({{"role", m.role}, {"content", m.content}});
  return out;
}

nlohmann::json rows_json(const data::SqlResult& result, size_t max_rows) {
  nlohmann::json rows = nlohmann::json::array();
  for (size_t r = 0; r < result.rows.size() && r < max_rows; ++r) {
    nlohmann::json cells = nlohmann::json::array();
    for (const auto& cell : result.rows[r]) cells.push_back(cell ? nlohmann::json(*cell) : nlohmann::json());
    rows.push_back(std::move(cells));
  }
  return rows;
}

std::string trim(const std::string& s) {
  const size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(" \t\r\n") - b + 1);
}

}  // namespace

const ConfigSchema& agent_config_schema() {
  static const ConfigSchema schema = [] {
    ConfigSchema s;
    s.add_int("agent.max_attempts", 3, "Model calls per question; each failed query is fed back for another try.", 1, 20)
        .add_int("agent.history_turns", 4, "`lathe agent chat`: earlier question/answer turns kept in the prompt.", 0, 50)
        .add_int("model.max_tokens", 512, "Tokens per model reply.", 1, 32768)
        .add_float("model.temperature", 0.0, "Sampling temperature of the SQL replies (0 = greedy).", 0.0, 2.0)
        .add_int("model.timeout_seconds", 600, "Seconds one endpoint request may take.", 1, 86400)
        .add_int("prompt.samples_per_column", 3, "Stored values shown per text column in the live schema (0 = none).", 0, 50)
        .add_int("guard.max_rows", 200, "Rows read per query; larger results are truncated with a note.", 1, 1000000)
        .add_float("guard.timeout_seconds", 5.0, "Seconds a query may run before it is stopped.", 0.01, 3600.0)
        .add_bool("answer.with_model", false, "Phrase the answer with a second model call instead of the template.")
        .add_int("answer.max_rows", 10, "Result rows listed in the answer (and shown to the model when it phrases it).", 1, 1000)
        .add_int("answer.max_tokens", 256, "Tokens for the model-phrased answer.", 1, 32768);
    return s;
  }();
  return schema;
}

AgentConfig agent_config_from(const Config& config) {
  AgentConfig c;
  c.max_attempts = static_cast<int>(config.get_int("agent.max_attempts"));
  c.history_turns = static_cast<int>(config.get_int("agent.history_turns"));
  c.max_tokens = static_cast<int>(config.get_int("model.max_tokens"));
  c.temperature = config.get_float("model.temperature");
  c.request_timeout_seconds = static_cast<double>(config.get_int("model.timeout_seconds"));
  c.samples_per_column = static_cast<int>(config.get_int("prompt.samples_per_column"));
  c.limits.max_rows = config.get_int("guard.max_rows");
  c.limits.timeout_seconds = config.get_float("guard.timeout_seconds");
  c.answer_with_model = config.get_bool("answer.with_model");
  c.answer_rows = static_cast<int>(config.get_int("answer.max_rows"));
  c.answer_max_tokens = static_cast<int>(config.get_int("answer.max_tokens"));
  return c;
}

ChatTurn AgentAnswer::turn() const {
  for (auto it = attempts.rbegin(); it != attempts.rend(); ++it) {
    if (it->status == "ok") return {question, it->completion};
  }
  return {question, attempts.empty() ? "" : attempts.back().completion};
}

nlohmann::json answer_to_json(const AgentAnswer& a) {
  nlohmann::json attempts = nlohmann::json::array();
  for (const auto& t : a.attempts) {
    attempts.push_back({{"attempt", t.number},
                        {"completion", t.completion},
                        {"finish_reason", t.finish_reason},
                        {"sql", t.sql ? nlohmann::json(*t.sql) : nlohmann::json()},
                        {"status", t.status},
                        {"message", t.message},
                        {"rows", t.rows},
                        {"truncated", t.truncated},
                        {"llm_ms", t.llm_ms},
                        {"guard_ms", t.guard_ms},
                        {"execute_ms", t.execute_ms},
                        {"tokens", usage_json(t.usage)}});
  }
  return {{"run_id", a.run_id},
          {"question", a.question},
          {"language", a.language},
          {"model", a.model},
          {"ok", a.ok},
          {"answer", a.answer},
          {"answer_method", a.answer_method},
          {"sql", a.sql},
          {"columns", a.result.columns},
          {"rows", rows_json(a.result, a.result.rows.size())},
          {"truncated", a.result.truncated},
          {"attempts", attempts},
          {"tokens", usage_json(a.usage)},
          {"latency_ms", a.latency_ms}};
}

std::string feedback_message(const Attempt& attempt) {
  const std::string format = " Answer again in the same format: <reasoning>…</reasoning> then <answer> with one SQL query </answer>.";
  if (attempt.status == "no_sql") return "Your reply had no <answer> block with a SQL query." + format;
  if (attempt.status == "refused") {
    return "The query was refused: " + attempt.message + ". Only one read-only SELECT statement is allowed." + format;
  }
  if (attempt.status == "stopped") {
    return "The query was stopped: " + attempt.message +
           ". Write a cheaper query (filter or aggregate, no cross joins)." + format;
  }
  return "The query failed: " + attempt.message + ". Fix it." + format;
}

Agent::Agent(const OpenAiClient& client, std::string model, SqlExecutor& executor, AgentConfig config,
             Tracer& tracer)
    : client_(client), model_(std::move(model)), executor_(executor), config_(config), tracer_(tracer) {
  system_prompt_ = !config_.system_prompt.empty()
                      ? config_.system_prompt
                      : data::inventory_system_prompt(live_schema(executor_, config_.samples_per_column), executor_.dialect());
}

AgentAnswer Agent::ask(const std::string& question, const std::vector<ChatTurn>& history) {
  const auto started = Clock::now();
  TraceSpan root(tracer_, "agent", "inventory_sql_agent", "", "", 0);
  AgentAnswer out;
  out.run_id = root.run_id();
  out.question = question;
  out.language = question_language(question);
  out.model = model_;
  root.inputs = {{"question", question}, {"model", model_}, {"history_turns", history.size()}};

  std::vector<ApiMessage> messages = {{"system", system_prompt_}};
  const size_t keep = std::min(history.size(), static_cast<size_t>(config_.history_turns));
  for (size_t i = history.size() - keep; i < history.size(); ++i) {
    messages.push_back({"user", history[i].question});
    messages.push_back({"assistant", history[i].completion});
  }
  messages.push_back({"user", question});

  ChatRequest request;
  request.model = model_;
  request.max_tokens = config_.max_tokens;
  request.temperature = config_.temperature;

  // One model call inside `span`; an endpoint failure closes the span and the root with
  // the error before it propagates.
  auto call_model = [&](TraceSpan& span, const ChatRequest& chat) {
    try {
      ChatResponse reply = client_.chat(chat);
      add_usage(out.usage, reply.usage);
      span.tokens = usage_json(reply.usage);
      return reply;
    } catch (const Error& e) {
      span.error = e.what();
      span.finish();
      root.error = e.what();
      root.outputs = {{"ok", false}};
      root.tokens = usage_json(out.usage);
      root.finish();
      throw;
    }
  };

  for (int number = 1; number <= config_.max_attempts; ++number) {
    Attempt attempt;
    attempt.number = number;
    request.messages = messages;

    TraceSpan llm(tracer_, "llm", "chat_completion", out.run_id, out.run_id, number);
    llm.inputs = {{"model", model_}, {"messages", messages_json(messages)}, {"max_tokens", request.max_tokens},
                  {"temperature", request.temperature}};
    const ChatResponse reply = call_model(llm, request);
    attempt.completion = reply.choices[0].content;
    attempt.finish_reason = reply.choices[0].finish_reason;
    attempt.usage = reply.usage;
    llm.outputs = {{"completion", attempt.completion}, {"finish_reason", attempt.finish_reason}};
    attempt.llm_ms = llm.finish();

    TraceSpan extract(tracer_, "extract", "extract_answer_sql", out.run_id, out.run_id, number);
    attempt.sql = data::extract_answer_sql(attempt.completion);
    extract.inputs = {{"completion", attempt.completion}};
    extract.outputs = {{"sql", attempt.sql ? nlohmann::json(*attempt.sql) : nlohmann::json()}};
    extract.finish();

    if (!attempt.sql) {
      attempt.status = "no_sql";
      attempt.message = "no <answer> block with SQL in the reply";
    } else {
      TraceSpan guard(tracer_, "guard", "sql_guard", out.run_id, out.run_id, number);
      const QueryOutcome outcome = executor_.run(*attempt.sql);
      attempt.guard_ms = outcome.guard_ms;
      attempt.execute_ms = outcome.execute_ms;
      attempt.status = query_status_name(outcome.status);
      attempt.message = outcome.message;
      const bool refused = outcome.status == QueryStatus::Refused;
      guard.inputs = {{"sql", *attempt.sql}, {"dialect", executor_.dialect()}};
      guard.outputs = {{"decision", refused ? "refused" : "allowed"}, {"reason", refused ? outcome.message : ""}};
      guard.set_timing(0, outcome.guard_ms);
      guard.finish();
      if (!refused) {
        TraceSpan execute(tracer_, "execute", "run_query", out.run_id, out.run_id, number);
        execute.inputs = {{"sql", *attempt.sql},
                          {"max_rows", executor_.limits().max_rows},
                          {"timeout_seconds", executor_.limits().timeout_seconds}};
        execute.outputs = {{"status", attempt.status},
                           {"columns", outcome.result.columns},
                           {"rows", rows_json(outcome.result, static_cast<size_t>(config_.answer_rows))},
                           {"row_count", outcome.result.rows.size()},
                           {"truncated", outcome.result.truncated}};
        if (!outcome.ok()) execute.error = outcome.message;
        execute.set_timing(outcome.guard_ms, outcome.execute_ms);
        execute.finish();
      }
      attempt.rows = static_cast<int64_t>(outcome.result.rows.size());
      attempt.truncated = outcome.result.truncated;
      out.sql = *attempt.sql;
      if (outcome.ok()) {
        out.ok = true;
        out.result = outcome.result;
      }
    }
    out.attempts.push_back(attempt);
    if (out.ok) break;
    messages.push_back({"assistant", attempt.completion});
    messages.push_back({"user", feedback_message(attempt)});
  }

  TraceSpan compose(tracer_, "answer", "compose_answer", out.run_id, out.run_id, 0);
  if (!out.ok) {
    out.answer_method = "failure";
    out.answer = failure_answer(out.language, out.attempts.back().message);
  } else if (config_.answer_with_model) {
    ChatRequest phrase;
    phrase.model = model_;
    phrase.messages = answer_messages(question, out.language, out.sql, out.result, config_.answer_rows);
    phrase.max_tokens = config_.answer_max_tokens;
    phrase.temperature = 0;
    compose.inputs = {{"messages", messages_json(phrase.messages)}};
    out.answer = trim(call_model(compose, phrase).choices[0].content);
    out.answer_method = "model";
    if (out.answer.empty()) {
      log::warn("the model's answer was empty; using the template answer");
      out.answer_method = "template";
    }
  }
  if (out.ok && out.answer_method != "model") {
    out.answer_method = "template";
    out.answer = template_answer(out.result, out.language, config_.answer_rows, executor_.limits().max_rows);
  }
  compose.outputs = {{"answer", out.answer}, {"method", out.answer_method}};
  compose.finish();

  out.latency_ms = std::chrono::duration<double, std::milli>(Clock::now() - started).count();
  root.outputs = {{"ok", out.ok}, {"answer", out.answer}, {"sql", out.sql}, {"attempts", out.attempts.size()}};
  root.tokens = usage_json(out.usage);
  root.finish();
  return out;
}

}  // namespace lathe::agent
