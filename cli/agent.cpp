// `lathe agent ask|chat|sql|eval|pg-load`: the inventory SQL agent from the command line.
// Flags only; the loop, guard, executors, traces and evaluation live in agent/.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <memory>

#include "agent/agent.h"
#include "agent/answer.h"
#include "agent/eval.h"
#include "agent/local_server.h"
#include "agent/postgres_executor.h"
#include "cli/commands.h"
#include "core/atomic_file.h"
#include "core/error.h"
#include "core/log.h"
#include "data/example.h"

namespace lathe::cli {

namespace {

struct AgentOptions {
  std::string endpoint, api_key, model_dir, db, config, trace;
  std::vector<std::string> models, adapters, sets;
  std::string device, dtype;
  int threads = 0;
  bool answer_with_model = false, json = false;
};

void add_database_options(CLI::App& cmd, AgentOptions& o) {
  cmd.add_option("--db", o.db, "SQLite file, or a PostgreSQL URL (postgresql://…) / libpq string")->required();
  cmd.add_option("--config", o.config, "YAML config (keys: `lathe agent --config-docs`)");
  cmd.add_option("--set", o.sets, "config override key.path=value (repeatable)");
}

void add_endpoint_options(CLI::App& cmd, AgentOptions& o, bool many_models) {
  cmd.add_option("--endpoint", o.endpoint, "OpenAI-compatible server (vLLM, lathe serve), e.g. http://127.0.0.1:8000/v1");
  cmd.add_option("--api-key", o.api_key, "bearer token for the endpoint")->envname("OPENAI_API_KEY");
  cmd.add_option("--model", o.models,
                 many_models ? "model or adapter name to evaluate (repeatable: compared side by side)"
                             : "model or adapter name at the endpoint")
      ->expected(1, many_models ? -1 : 1);
  cmd.add_option("--model-dir", o.model_dir, "instead of --endpoint: start `lathe serve` on loopback with this model");
  cmd.add_option("--adapter", o.adapters, "with --model-dir: a PEFT adapter DIR or NAME=DIR (repeatable)");
  cmd.add_option("--device", o.device, "with --model-dir: passed to lathe serve");
  cmd.add_option("--dtype", o.dtype, "with --model-dir: passed to lathe serve");
  cmd.add_option("--threads", o.threads, "with --model-dir: passed to lathe serve");
  cmd.add_option("--trace", o.trace, "append the run tree of every question to this JSONL file");
}

agent::AgentConfig load_agent_config(const AgentOptions& o, bool answer_with_model) {
  std::vector<std::string> sets = o.sets;
  if (answer_with_model) sets.push_back("answer.with_model=true");
  return agent::agent_config_from(load_config(agent::agent_config_schema(), o.config, sets));
}

// The endpoint the agent talks to: the one given, or a `lathe serve` it starts itself.
struct Connection {
  std::unique_ptr<agent::LocalServer> server;
  std::unique_ptr<OpenAiClient> client;
  std::vector<std::string> models;  // what to ask: the --model names or the served defaults
};

Connection connect(const AgentOptions& o, const agent::AgentConfig& config, bool all_models) {
  if (!o.endpoint.empty() && !o.model_dir.empty()) fail("agent: give --endpoint or --model-dir, not both");
  if (o.endpoint.empty() && o.model_dir.empty()) {
    fail("agent: give --endpoint URL (a running vLLM or lathe serve) or --model-dir DIR [--adapter DIR] to start one");
  }
  if (o.model_dir.empty() && (!o.adapters.empty() || !o.device.empty() || !o.dtype.empty() || o.threads)) {
    fail("agent: --adapter, --device, --dtype and --threads go with --model-dir (the endpoint has its own)");
  }
  if (!all_models && o.models.size() > 1) fail("agent: one --model at a time here (eval compares several)");
  Connection c;
  OpenAiClientOptions client_options;
  client_options.api_key = o.api_key;
  client_options.read_timeout_seconds = config.request_timeout_seconds;
  if (!o.model_dir.empty()) {
    agent::LocalServerOptions server;
    server.model_dir = o.model_dir;
    server.adapters = agent::parse_adapter_args(o.adapters);
    if (!o.device.empty()) server.extra_args.insert(server.extra_args.end(), {"--device", o.device});
    if (!o.dtype.empty()) server.extra_args.insert(server.extra_args.end(), {"--dtype", o.dtype});
    if (o.threads) server.extra_args.insert(server.extra_args.end(), {"--threads", std::to_string(o.threads)});
    c.server = std::make_unique<agent::LocalServer>(server);
    client_options.endpoint = c.server->endpoint();
    client_options.api_key.clear();
    if (o.models.empty()) {
      if (all_models || server.adapters.empty()) c.models.push_back(server.served_model_name);
      for (const auto& [name, dir] : server.adapters) {
        if (all_models || c.models.empty()) c.models.push_back(name);
      }
    }
  } else {
    client_options.endpoint = o.endpoint;
  }
  c.client = std::make_unique<OpenAiClient>(client_options);
  if (!o.models.empty()) c.models = o.models;
  if (c.models.empty()) {
    std::string served;
    try {
      for (const auto& card : c.client->list_models()) served += (served.empty() ? "" : ", ") + card.id;
    } catch (const Error& e) {
      served = "could not list them: " + std::string(e.what());
    }
    fail("agent: --model NAME is required with --endpoint (the server offers: " + served + ")");
  }
  return c;
}

// What ask and chat work with: the config, the database, the endpoint, the trace file and
// the agent over them (which keeps references to the others, so the session never moves).
struct Session {
  agent::AgentConfig config;
  std::unique_ptr<agent::SqlExecutor> executor;
  Connection connection;
  std::unique_ptr<agent::Tracer> tracer;
  std::unique_ptr<agent::Agent> agent;
};

std::unique_ptr<Session> open_session(const AgentOptions& o) {
  auto s = std::make_unique<Session>();
  s->config = load_agent_config(o, o.answer_with_model);
  s->executor = agent::open_executor(o.db, s->config.limits);
  s->connection = connect(o, s->config, false);
  s->tracer = std::make_unique<agent::Tracer>(o.trace);
  s->agent = std::make_unique<agent::Agent>(*s->connection.client, s->connection.models.front(), *s->executor,
                                            s->config, *s->tracer);
  return s;
}

std::string json_text(const nlohmann::json& j) { return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace); }

void print_answer(const agent::AgentAnswer& a, int table_rows) {
  std::printf("%s\n", a.answer.c_str());
  if (!a.sql.empty()) std::printf("\nSQL: %s\n", a.sql.c_str());
  if (a.ok) {
    std::printf("%s", agent::format_result_table(a.result, table_rows).c_str());
  } else {
    for (const auto& t : a.attempts) std::printf("attempt %d: %s: %s\n", t.number, t.status.c_str(), t.message.c_str());
  }
  std::printf("(%zu attempt%s, %.0f ms, %lld prompt + %lld completion tokens, run %s)\n", a.attempts.size(),
              a.attempts.size() == 1 ? "" : "s", a.latency_ms, static_cast<long long>(a.usage.prompt_tokens),
              static_cast<long long>(a.usage.completion_tokens), a.run_id.c_str());
}

[[noreturn]] void fail_unanswered(const agent::AgentAnswer& a) {
  fail("agent: no query ran after " + std::to_string(a.attempts.size()) + " attempts: " +
       (a.attempts.empty() ? std::string("no attempt") : a.attempts.back().message));
}

void register_ask(CLI::App& agent_cmd) {
  auto o = std::make_shared<AgentOptions>();
  auto question = std::make_shared<std::string>();
  CLI::App* cmd = agent_cmd.add_subcommand("ask", "answer one inventory question: the answer, the SQL and the result");
  cmd->add_option("question", *question, "the question, in Chinese or English")->required();
  add_endpoint_options(*cmd, *o, false);
  add_database_options(*cmd, *o);
  cmd->add_flag("--answer-with-model", o->answer_with_model, "let the model phrase the answer (default: a template)");
  cmd->add_flag("--json", o->json, "print everything as one JSON object");
  cmd->callback([o, question] {
    const auto session = open_session(*o);
    const agent::AgentAnswer answer = session->agent->ask(*question);
    if (o->json) {
      std::printf("%s\n", json_text(agent::answer_to_json(answer)).c_str());
    } else {
      print_answer(answer, session->config.answer_rows);
    }
    std::fflush(stdout);
    if (!answer.ok) fail_unanswered(answer);
  });
}

void register_chat(CLI::App& agent_cmd) {
  auto o = std::make_shared<AgentOptions>();
  CLI::App* cmd = agent_cmd.add_subcommand(
      "chat", "interactive questions with history (:history, :reset, :quit; follow-ups see earlier turns)");
  add_endpoint_options(*cmd, *o, false);
  add_database_options(*cmd, *o);
  cmd->add_flag("--answer-with-model", o->answer_with_model, "let the model phrase the answers");
  cmd->callback([o] {
    const auto session = open_session(*o);
    const bool interactive = ::isatty(STDIN_FILENO);
    if (interactive) {
      std::fprintf(stderr, "lathe agent chat — model %s, database %s. :history, :reset, :quit\n",
                   session->connection.models.front().c_str(), o->db.c_str());
    }
    std::vector<agent::ChatTurn> history;
    std::string line;
    for (;;) {
      if (interactive) std::fprintf(stderr, "> ");
      if (!std::getline(std::cin, line)) break;
      const size_t b = line.find_first_not_of(" \t\r");
      if (b == std::string::npos) continue;
      line = line.substr(b, line.find_last_not_of(" \t\r") - b + 1);
      if (line == ":quit" || line == ":q" || line == ":exit") break;
      if (line == ":reset") {
        history.clear();
        std::printf("(history cleared)\n");
        continue;
      }
      if (line == ":history") {
        for (size_t i = 0; i < history.size(); ++i) std::printf("%zu. %s\n", i + 1, history[i].question.c_str());
        if (history.empty()) std::printf("(no history)\n");
        continue;
      }
      try {
        const agent::AgentAnswer answer = session->agent->ask(line, history);
        print_answer(answer, session->config.answer_rows);
        if (answer.ok) history.push_back(answer.turn());
      } catch (const Error& e) {
        std::fprintf(stderr, "lathe: %s\n", e.what());  // the session goes on
      }
      std::printf("\n");
      std::fflush(stdout);
    }
  });
}

void register_sql(CLI::App& agent_cmd) {
  auto o = std::make_shared<AgentOptions>();
  auto sql = std::make_shared<std::string>();
  CLI::App* cmd = agent_cmd.add_subcommand(
      "sql", "run one statement through the agent's guard and executor: rows, or the refusal (exit 1)");
  cmd->add_option("sql", *sql, "the statement")->required();
  add_database_options(*cmd, *o);
  cmd->add_flag("--json", o->json, "print the outcome as one JSON object");
  cmd->callback([o, sql] {
    const agent::AgentConfig config = load_agent_config(*o, false);
    auto executor = agent::open_executor(o->db, config.limits);
    const agent::QueryOutcome r = executor->run(*sql);
    if (o->json) {
      nlohmann::json rows = nlohmann::json::array();
      for (const auto& row : r.result.rows) {
        nlohmann::json cells = nlohmann::json::array();
        for (const auto& cell : row) cells.push_back(cell ? nlohmann::json(*cell) : nlohmann::json());
        rows.push_back(std::move(cells));
      }
      std::printf("%s\n", json_text({{"status", agent::query_status_name(r.status)},
                                     {"message", r.message},
                                     {"columns", r.result.columns},
                                     {"rows", rows},
                                     {"truncated", r.result.truncated},
                                     {"guard_ms", r.guard_ms},
                                     {"execute_ms", r.execute_ms}})
                              .c_str());
    } else if (r.ok()) {
      std::printf("%s", agent::format_result_table(r.result, static_cast<int>(config.limits.max_rows)).c_str());
    }
    std::fflush(stdout);
    if (!r.ok()) fail(std::string("agent sql: ") + agent::query_status_name(r.status) + ": " + r.message);
  });
}

void register_eval(CLI::App& agent_cmd) {
  auto o = std::make_shared<AgentOptions>();
  auto questions_path = std::make_shared<std::string>();
  auto out = std::make_shared<std::string>();
  auto markdown = std::make_shared<std::string>();
  auto limit = std::make_shared<int>(0);
  CLI::App* cmd = agent_cmd.add_subcommand(
      "eval", "execution accuracy of the agent on a question file, per family and language, models side by side");
  cmd->add_option("--questions", *questions_path, "JSONL rows with question and sql (e.g. a split's test.jsonl)")->required();
  add_endpoint_options(*cmd, *o, true);
  add_database_options(*cmd, *o);
  cmd->add_option("--out", *out, "write the figures (and every question's outcome) as JSON");
  cmd->add_option("--markdown", *markdown, "also write the Markdown table to this file");
  cmd->add_option("--limit", *limit, "only the first N questions")->check(CLI::NonNegativeNumber);
  cmd->callback([=] {
    agent::AgentConfig config = load_agent_config(*o, false);
    config.answer_with_model = false;  // phrasing is not scored
    auto questions = agent::read_eval_questions(*questions_path);
    if (*limit > 0 && static_cast<size_t>(*limit) < questions.size()) questions.resize(*limit);
    auto executor = agent::open_executor(o->db, config.limits);
    agent::prepare_gold(questions, *executor);
    Connection c = connect(*o, config, true);
    agent::Tracer tracer(o->trace);
    std::vector<agent::ModelEval> results;
    for (const auto& model : c.models) {
      agent::Agent a(*c.client, model, *executor, config, tracer);
      results.push_back(agent::evaluate_model(a, model, questions));
    }
    const std::string table = agent::eval_markdown(results);
    std::printf("%s", table.c_str());
    if (!markdown->empty()) write_file_atomic(*markdown, table);
    if (!out->empty()) {
      nlohmann::json report = agent::eval_to_json(results);
      report["questions"] = *questions_path;
      report["database"] = executor->dialect() == "SQLite" ? o->db : std::string("(PostgreSQL)");
      report["endpoint"] = c.client->options().endpoint;
      write_file_atomic(*out, report.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
    }
  });
}

void register_pg_load(CLI::App& agent_cmd) {
  auto db = std::make_shared<std::string>();
  auto to = std::make_shared<std::string>();
  auto role = std::make_shared<std::string>();
  CLI::App* cmd = agent_cmd.add_subcommand(
      "pg-load", "copy a SQLite inventory database into PostgreSQL for the agent's PostgreSQL backend");
  cmd->add_option("--db", *db, "SQLite inventory database")->required();
  cmd->add_option("--to", *to, "PostgreSQL URL or libpq string (tables of the same names are replaced)")->required();
  cmd->add_option("--grant-select", *role, "role that gets SELECT on the copied tables (the agent's login)");
  cmd->callback([=] {
    agent::copy_sqlite_to_postgres(*db, *to, *role);
    std::printf("copied %s into PostgreSQL\n", db->c_str());
  });
}

}  // namespace

void register_agent(CLI::App& app) {
  CLI::App* agent_cmd = app.add_subcommand("agent", "the inventory SQL agent: ask, chat, sql, eval, pg-load");
  agent_cmd->require_subcommand(0, 1);
  auto docs = std::make_shared<bool>(false);
  agent_cmd->add_flag("--config-docs", *docs, "print every config key as a markdown table and exit");
  register_ask(*agent_cmd);
  register_chat(*agent_cmd);
  register_sql(*agent_cmd);
  register_eval(*agent_cmd);
  register_pg_load(*agent_cmd);
  agent_cmd->callback([agent_cmd, docs] {
    if (*docs) {
      std::cout << agent::agent_config_schema().markdown();
    } else if (agent_cmd->get_subcommands().empty()) {
      fail("agent: give a subcommand: ask, chat, sql, eval or pg-load (lathe agent --help)");
    }
  });
}

}  // namespace lathe::cli
