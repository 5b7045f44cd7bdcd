// Lexical facts about one SQL text that both executors' guards use before the database sees
// it: the leading keyword and the names called as functions. A small tokenizer that knows
// SQLite's and PostgreSQL's quoting ('…' with '' escapes, "…", `…`, […], $tag$…$tag$) and
// comments (--, nested /* */), so a keyword inside a string or a comment never counts.
// This is the first, cheap line of the guard; the authoritative checks are the database's
// own (SQLite's prepare tail, authorizer and read-only flag; PostgreSQL's read-only
// transaction and single-statement extended protocol).
#pragma once
#include <set>
#include <string>
#include <vector>

namespace lathe::agent {

struct SqlToken {
  enum Kind { Word, Quoted, Number, Symbol } kind;
  std::string text;  // words upper-cased; quoted tokens keep their quotes
};

// Tokens outside comments and whitespace. An unterminated string or comment runs to the end.
std::vector<SqlToken> sql_tokens(const std::string& sql);

// The first keyword, upper-cased ("SELECT", "WITH", "DELETE", …); "" when there is none.
std::string leading_keyword(const std::string& sql);

// Upper-cased names directly followed by "(" (functions, table-valued functions), in order.
std::vector<std::string> called_functions(const std::string& sql);

// True when a ";" is followed by anything other than more ";" (a second statement).
bool has_second_statement(const std::string& sql);

// The guard's first line, shared by the backends: why `sql` must be refused before the
// database sees it, or "" — no statement; a first keyword other than SELECT or WITH; a second
// statement; a word only writing or schema statements use (INSERT, UPDATE, DELETE, DROP,
// ALTER, CREATE, ATTACH, DETACH, PRAGMA, VACUUM, REINDEX, ANALYZE, TRUNCATE, GRANT, REVOKE,
// MERGE, INTO, BEGIN, COMMIT, ROLLBACK, SAVEPOINT); a call to one of `denied_functions`
// (upper-case names).
std::string lexical_refusal(const std::string& sql, const std::set<std::string>& denied_functions);

}  // namespace lathe::agent
