// Fuzz target: a CSV file as `lathe data build` imports one: user questions (collect.import)
// and an inventory export (db.from_csv), which is written into a fresh SQLite database.
#include "data/collect.h"
#include "data/inventory_db.h"
#include "tests/fuzz/fuzz_target.h"

namespace lathe::fuzz {

void fuzz_csv_rows(const std::string& input) {
  const std::string path = write_scratch_file("rows.csv", input);
  unless_rejected([&] { data::import_user_questions(path); });
  unless_rejected([&] { data::import_inventory_csv(path, scratch_dir() + "/imported.sqlite"); });
}

}  // namespace lathe::fuzz
