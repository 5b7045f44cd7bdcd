// The pretraining corpus: deterministic for a seed, every schema and both languages present,
// every gold query executes on its own schema's database and returns the stored gold result,
// no row touches the inventory schema, and rows carry the shared answer format.
#include <gtest/gtest.h>

#include <map>
#include <set>

#include "core/atomic_file.h"
#include "core/error.h"
#include "data/format.h"
#include "data/inventory_db.h"
#include "data/sql_corpus.h"
#include "data/sql_exec.h"
#include "tests/support/test_support.h"

namespace lathe::data {
namespace {

using ::lathe::testing::TempDir;

CorpusOptions small() {
  CorpusOptions o;
  o.examples = 600;
  o.entities_per_schema = 120;
  return o;
}

TEST(SqlCorpus, SameSeedSameRowsAndDatabases) {
  TempDir a, b;
  const SqlCorpus x = generate_sql_corpus(small(), a.file("db"));
  const SqlCorpus y = generate_sql_corpus(small(), b.file("db"));
  ASSERT_EQ(x.examples.size(), y.examples.size());
  for (size_t i = 0; i < x.examples.size(); ++i) {
    EXPECT_EQ(x.examples[i].example.question, y.examples[i].example.question);
    EXPECT_EQ(x.examples[i].example.sql, y.examples[i].example.sql);
  }
  for (const auto& name : corpus_schema_names())
    EXPECT_EQ(read_file(a.file("db/" + name + ".sqlite")), read_file(b.file("db/" + name + ".sqlite"))) << name;
  CorpusOptions other = small();
  other.seed = 2;
  const SqlCorpus z = generate_sql_corpus(other, b.file("db2"));
  EXPECT_NE(x.examples[0].example.question + x.examples[1].example.question,
            z.examples[0].example.question + z.examples[1].example.question);
}

TEST(SqlCorpus, EveryGoldQueryExecutesOnItsSchema) {
  TempDir dir;
  const SqlCorpus corpus = generate_sql_corpus(small(), dir.file("db"));
  EXPECT_EQ(corpus.examples.size(), 600u);
  std::map<std::string, std::unique_ptr<SqlDatabase>> dbs;
  for (const auto& s : corpus.schemas) dbs[s.name] = std::make_unique<SqlDatabase>(s.database);
  std::set<std::string> schemas, languages, families;
  for (const auto& e : corpus.examples) {
    schemas.insert(e.schema);
    languages.insert(e.example.language);
    families.insert(e.example.family.substr(e.example.family.find('.') + 1));
    const CanonicalResult gold = canonical_from_json(e.example.gold_result);
    const SqlResult again = dbs.at(e.schema)->query(e.example.sql);
    EXPECT_TRUE(results_match(gold, canonicalize(again, gold.ordered))) << e.example.id << ": " << e.example.sql;
    EXPECT_FALSE(gold.rows.empty()) << e.example.id;
    // The base model must not meet the inventory schema before SFT.
    for (const char* inventory : {"vehicles", "stores", "guide_price", "pickup_date"})
      EXPECT_EQ(e.example.sql.find(inventory), std::string::npos) << e.example.sql;
  }
  EXPECT_EQ(schemas.size(), corpus_schema_names().size());
  EXPECT_EQ(languages, (std::set<std::string>{"en", "zh"}));
  int zh = 0;
  for (const auto& e : corpus.examples) zh += e.example.language == "zh" ? 1 : 0;
  EXPECT_NEAR(zh, 300, 45) << "both languages in about equal shares";
  EXPECT_GE(families.size(), 40u);
}

TEST(SqlCorpus, RowsUseTheSharedPromptAndAnswerFormat) {
  TempDir dir;
  const SqlCorpus corpus = generate_sql_corpus(small(), dir.file("db"));
  const CorpusSchemaInfo& schema = corpus.schemas[0];
  ASSERT_EQ(schema.name, "shop");
  EXPECT_NE(schema.system_prompt.find(schema.schema_sql), std::string::npos);
  EXPECT_NE(schema.system_prompt.find("Respond in the following format:\n<reasoning>"), std::string::npos);
  for (const auto& e : corpus.examples) {
    if (e.schema != schema.name) continue;
    const nlohmann::json row = corpus_chat_row(schema, e.example);
    ASSERT_EQ(row["messages"].size(), 3u);
    EXPECT_EQ(row["messages"][0]["content"], schema.system_prompt);
    EXPECT_EQ(row["messages"][1]["content"], e.example.question);
    const std::string answer = row["messages"][2]["content"];
    EXPECT_EQ(extract_answer_sql(answer), e.example.sql);
    EXPECT_EQ(answer.rfind("<reasoning>\n", 0), 0u);
    // The reasoning names the schema's own tables.
    EXPECT_TRUE(answer.find("products") != std::string::npos || answer.find("branches") != std::string::npos) << answer;
  }
}

TEST(SqlCorpus, SmallCorpusStillMixesFamiliesAndLanguages) {
  TempDir dir;
  CorpusOptions o = small();
  o.examples = 60;  // 10 per schema, fewer than the families
  const SqlCorpus corpus = generate_sql_corpus(o, dir.file("db"));
  std::set<std::string> families, languages;
  for (const auto& e : corpus.examples) families.insert(e.example.family), languages.insert(e.example.language);
  EXPECT_EQ(families.size(), 60u) << "60 different schema.family pairs";
  EXPECT_EQ(languages.size(), 2u);
}

TEST(SqlCorpus, UnknownSchemaNamesTheValidOnes) {
  TempDir dir;
  CorpusOptions o = small();
  o.schemas = {"shop", "zoo"};
  try {
    generate_sql_corpus(o, dir.file("db"));
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("unknown schema 'zoo'"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("hospital"), std::string::npos) << e.what();
  }
}

TEST(SqlPlan, InventoryNamesUnchangedByTheGeneralForm) {
  const std::string sql = "SELECT COUNT(*) FROM vehicles WHERE brand = '宝马' AND status = 'in_stock'";
  EXPECT_EQ(describe_sql_plan(sql, "en"), describe_sql_plan(sql, "en", inventory_plan_names()));
  SqlPlanNames names;
  names.tables = {"products"};
  names.columns = {"brand"};
  EXPECT_EQ(describe_sql_plan("SELECT COUNT(*) FROM products WHERE brand = '华为'", "en", names),
            "Query the products table, filter on brand, aggregate with COUNT.");
}

TEST(SqlCorpus, GlossaryTeachesEveryBrandAndModelBothWays) {
  const auto rows = glossary_rows();
  std::map<std::string, std::string> to_chinese, to_english;
  for (const auto& row : rows) {
    const auto& m = row.at("messages");
    ASSERT_EQ(m.size(), 2u);
    const std::string q = m[0].at("content"), a = m[1].at("content");
    if (row.at("language") == "en") to_chinese[q] = a; else to_english[q] = a;
  }
  EXPECT_EQ(to_chinese.size(), to_english.size());
  for (const auto& b : inventory_brands()) {
    EXPECT_EQ(to_chinese["What is " + b.english + " in Chinese?"], b.name);
    EXPECT_EQ(to_english["“" + b.name + "”的英文是什么？"], b.english);
    for (const auto& model : b.models)  // names written alike in both languages (X3) need no row
      if (model.english != model.name) EXPECT_EQ(to_chinese["What is " + model.english + " in Chinese?"], model.name);
  }
  EXPECT_EQ(to_chinese["What is white in Chinese?"], "白色");
  EXPECT_EQ(to_chinese["What is Shanghai in Chinese?"], "上海");
}

}  // namespace
}  // namespace lathe::data
