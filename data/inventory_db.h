// The car-dealer inventory database (SQLite): its exact schema, a deterministic synthetic
// generator with Chinese-market brands/models/stores, and a CSV importer for real exports.
// Values are stored in Chinese (宝马, 白色, 上海, 华东); english_term() gives the English words
// the English question templates use.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace lathe::data {

// The CREATE TABLE statements (stores, vehicles, meta), with the column comments the system
// prompt shows the model.
const std::string& inventory_schema_sql();

struct ModelSpec {
  std::string name;     // stored value, e.g. "凯美瑞"
  std::string english;  // e.g. "Camry"
  std::string body_type;                // sedan | suv | mpv | hatchback
  std::vector<std::string> fuel_types;  // gasoline | hybrid | phev | ev
  double price_min = 0, price_max = 0;  // guide price range, CNY
};
struct BrandSpec {
  std::string name;     // "宝马"
  std::string english;  // "BMW"
  std::string wmi;      // first three VIN characters
  double weight = 1;    // share of the group's stock
  std::vector<ModelSpec> models;
};
struct StoreSpec {
  std::string name, city, region;
};

const std::vector<BrandSpec>& inventory_brands();
const std::vector<StoreSpec>& inventory_stores();
const std::vector<std::string>& inventory_colors();
const std::vector<std::string>& inventory_statuses();    // in_stock reserved sold in_transit
const std::vector<std::string>& inventory_body_types();  // sedan suv mpv hatchback
const std::vector<std::string>& inventory_fuel_types();  // gasoline hybrid phev ev

// English for a stored Chinese value (brand, model, colour, city, region); the value itself
// when unknown (imported data may hold anything).
std::string english_term(const std::string& stored_value);

struct InventoryDbOptions {
  int vehicles = 2000;
  uint64_t seed = 1;
  std::string as_of_date = "2024-06-30";  // meta.as_of_date; pickup dates fall in the year before
};

// Writes a fresh database to `out_path` (via a temp file and rename). Same options, same rows.
void generate_inventory_db(const std::string& out_path, const InventoryDbOptions& options);

struct CsvImportReport {
  int imported = 0;
  int rejected = 0;
  std::vector<std::string> errors;  // "FILE:LINE: reason"
};

// Imports an inventory export: a header row naming the columns vehicle_id, brand, model,
// model_year, body_type, fuel_type, color, pickup_date, guide_price, status, store, city,
// region and optionally mileage_km (any order). Stores get ids in order of first appearance.
// Bad rows are skipped and reported; a file with no good row is an error. as_of_date empty =
// the latest pickup date.
CsvImportReport import_inventory_csv(const std::string& csv_path, const std::string& out_path,
                                     const std::string& as_of_date = "");

// 'YYYY-MM-DD' that is a real calendar date.
bool is_valid_date(const std::string& text);
// Days since 1970-01-01 for a valid date, and back.
int64_t date_to_days(const std::string& date);
std::string days_to_date(int64_t days);

}  // namespace lathe::data
