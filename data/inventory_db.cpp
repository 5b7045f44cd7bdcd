// Inventory database: schema, catalog, deterministic generator, CSV import.
#include "data/inventory_db.h"

#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <map>
#include <set>
#include <unordered_map>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/log.h"
#include "data/rng.h"
#include "data/text_io.h"

namespace lathe::data {

const std::string& inventory_schema_sql() {
  static const std::string sql =
      "CREATE TABLE stores(store_id INTEGER PRIMARY KEY, name TEXT NOT NULL, city TEXT NOT NULL, "
      "region TEXT NOT NULL);\n"
      "CREATE TABLE vehicles(vehicle_id TEXT PRIMARY KEY,       -- 17-character VIN-style id\n"
      "         brand TEXT NOT NULL, model TEXT NOT NULL, model_year INTEGER NOT NULL,\n"
      "         body_type TEXT NOT NULL,            -- 'sedan','suv','mpv','hatchback'\n"
      "         fuel_type TEXT NOT NULL,            -- 'gasoline','hybrid','phev','ev'\n"
      "         color TEXT NOT NULL,                -- 白色 黑色 灰色 银色 蓝色 红色 …\n"
      "         pickup_date TEXT NOT NULL,          -- 'YYYY-MM-DD'\n"
      "         guide_price REAL NOT NULL,          -- CNY\n"
      "         status TEXT NOT NULL CHECK (status IN ('in_stock','reserved','sold','in_transit')),\n"
      "         store_id INTEGER NOT NULL REFERENCES stores(store_id),\n"
      "         mileage_km INTEGER NOT NULL DEFAULT 0);\n"
      "CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);   -- holds 'as_of_date' for "
      "\"days in stock\" style questions\n";
  return sql;
}

const std::vector<BrandSpec>& inventory_brands() {
  // Prices are 2024 Chinese guide prices (CNY), rounded to the ranges of each model's trims.
  static const std::vector<BrandSpec> brands = {
      {"宝马", "BMW", "LBV", 8,
       {{"3系", "3 Series", "sedan", {"gasoline"}, 293900, 409900},
        {"5系", "5 Series", "sedan", {"gasoline", "phev"}, 439900, 559900},
        {"X3", "X3", "suv", {"gasoline"}, 399900, 499900},
        {"X5", "X5", "suv", {"gasoline", "phev"}, 669900, 929900},
        {"i3", "i3", "sedan", {"ev"}, 353900, 413900}}},
      {"奔驰", "Mercedes-Benz", "LE4", 8,
       {{"C级", "C-Class", "sedan", {"gasoline"}, 333900, 401900},
        {"E级", "E-Class", "sedan", {"gasoline", "phev"}, 449900, 578900},
        {"GLC", "GLC", "suv", {"gasoline"}, 428800, 528800},
        {"GLE", "GLE", "suv", {"gasoline"}, 714800, 918800},
        {"EQE", "EQE", "sedan", {"ev"}, 478000, 588000}}},
      {"奥迪", "Audi", "LFV", 7,
       {{"A4L", "A4L", "sedan", {"gasoline"}, 321800, 399800},
        {"A6L", "A6L", "sedan", {"gasoline", "phev"}, 421900, 655400},
        {"Q3", "Q3", "suv", {"gasoline"}, 278800, 356800},
        {"Q5L", "Q5L", "suv", {"gasoline"}, 403800, 503800}}},
      {"丰田", "Toyota", "LVG", 10,
       {{"凯美瑞", "Camry", "sedan", {"gasoline", "hybrid"}, 171800, 259800},
        {"卡罗拉", "Corolla", "sedan", {"gasoline", "hybrid"}, 115800, 159800},
        {"RAV4荣放", "RAV4", "suv", {"gasoline", "hybrid"}, 174800, 263800},
        {"汉兰达", "Highlander", "suv", {"hybrid"}, 269800, 349800},
        {"赛那", "Sienna", "mpv", {"hybrid"}, 309800, 413800}}},
      {"本田", "Honda", "LHG", 8,
       {{"雅阁", "Accord", "sedan", {"gasoline", "hybrid"}, 179800, 259800},
        {"思域", "Civic", "sedan", {"gasoline"}, 129900, 174900},
        {"CR-V", "CR-V", "suv", {"gasoline", "hybrid"}, 185900, 275900},
        {"奥德赛", "Odyssey", "mpv", {"hybrid"}, 259800, 329800},
        {"飞度", "Fit", "hatchback", {"gasoline"}, 84800, 109800}}},
      {"大众", "Volkswagen", "LSV", 10,
       {{"帕萨特", "Passat", "sedan", {"gasoline"}, 185900, 255900},
        {"朗逸", "Lavida", "sedan", {"gasoline"}, 109900, 155900},
        {"途观L", "Tiguan L", "suv", {"gasoline", "phev"}, 215800, 289800},
        {"高尔夫", "Golf", "hatchback", {"gasoline"}, 129800, 229800},
        {"ID.4", "ID.4", "suv", {"ev"}, 189900, 279900}}},
      {"比亚迪", "BYD", "LGX", 14,
       {{"汉", "Han", "sedan", {"ev", "phev"}, 169800, 299800},
        {"秦PLUS", "Qin PLUS", "sedan", {"phev", "ev"}, 99800, 169800},
        {"宋PLUS", "Song PLUS", "suv", {"phev", "ev"}, 149800, 209800},
        {"元PLUS", "Yuan PLUS", "suv", {"ev"}, 119800, 147800},
        {"海豚", "Dolphin", "hatchback", {"ev"}, 99800, 129800},
        {"唐", "Tang", "suv", {"phev", "ev"}, 199800, 289800}}},
      {"特斯拉", "Tesla", "LRW", 6,
       {{"Model 3", "Model 3", "sedan", {"ev"}, 231900, 335900},
        {"Model Y", "Model Y", "suv", {"ev"}, 249900, 363900}}},
      {"理想", "Li Auto", "LW4", 5,
       {{"L6", "L6", "suv", {"phev"}, 249800, 279800},
        {"L7", "L7", "suv", {"phev"}, 301800, 379800},
        {"L8", "L8", "suv", {"phev"}, 321800, 399800},
        {"L9", "L9", "suv", {"phev"}, 409800, 439800},
        {"MEGA", "MEGA", "mpv", {"ev"}, 529800, 559800}}},
      {"蔚来", "NIO", "LJ1", 4,
       {{"ET5", "ET5", "sedan", {"ev"}, 298000, 356000},
        {"ES6", "ES6", "suv", {"ev"}, 338000, 396000},
        {"EC6", "EC6", "suv", {"ev"}, 358000, 426000},
        {"ES8", "ES8", "suv", {"ev"}, 498000, 598000}}},
      {"吉利", "Geely", "L6T", 8,
       {{"星越L", "Monjaro", "suv", {"gasoline", "phev"}, 135700, 188700},
        {"帝豪", "Emgrand", "sedan", {"gasoline"}, 69900, 99900},
        {"博越L", "Boyue L", "suv", {"gasoline"}, 105700, 139700},
        {"银河L7", "Galaxy L7", "suv", {"phev"}, 138700, 173700}}},
      {"长安", "Changan", "LS5", 7,
       {{"CS75 PLUS", "CS75 PLUS", "suv", {"gasoline"}, 109900, 159900},
        {"逸动", "Eado", "sedan", {"gasoline"}, 69900, 99900},
        {"UNI-V", "UNI-V", "sedan", {"gasoline"}, 109900, 139900},
        {"深蓝SL03", "Deepal SL03", "sedan", {"ev", "phev"}, 168900, 219900}}},
      {"小鹏", "XPeng", "LMG", 3,
       {{"P7", "P7", "sedan", {"ev"}, 209900, 339900},
        {"G6", "G6", "suv", {"ev"}, 204900, 276900},
        {"G9", "G9", "suv", {"ev"}, 263900, 359900}}},
      {"别克", "Buick", "LSG", 5,
       {{"GL8", "GL8", "mpv", {"gasoline", "hybrid"}, 232900, 529900},
        {"君越", "LaCrosse", "sedan", {"gasoline"}, 209900, 259900},
        {"昂科威", "Envision", "suv", {"gasoline"}, 199900, 269900}}},
  };
  return brands;
}

const std::vector<StoreSpec>& inventory_stores() {
  static const std::vector<StoreSpec> stores = {
      {"北京朝阳店", "北京", "华北"}, {"北京海淀店", "北京", "华北"}, {"北京亦庄店", "北京", "华北"},
      {"天津河西店", "天津", "华北"}, {"上海浦东店", "上海", "华东"}, {"上海徐汇店", "上海", "华东"},
      {"上海嘉定店", "上海", "华东"}, {"杭州西湖店", "杭州", "华东"}, {"杭州滨江店", "杭州", "华东"},
      {"南京江宁店", "南京", "华东"}, {"苏州园区店", "苏州", "华东"}, {"广州天河店", "广州", "华南"},
      {"广州番禺店", "广州", "华南"}, {"深圳南山店", "深圳", "华南"}, {"深圳福田店", "深圳", "华南"},
      {"成都高新店", "成都", "西南"}, {"成都武侯店", "成都", "西南"}, {"重庆渝北店", "重庆", "西南"},
      {"武汉光谷店", "武汉", "华中"}, {"西安高新店", "西安", "西北"},
  };
  return stores;
}

const std::vector<std::string>& inventory_colors() {
  static const std::vector<std::string> colors = {"白色", "黑色", "灰色", "银色",
                                                  "蓝色", "红色", "绿色", "棕色"};
  return colors;
}
const std::vector<std::string>& inventory_statuses() {
  static const std::vector<std::string> v = {"in_stock", "reserved", "sold", "in_transit"};
  return v;
}
const std::vector<std::string>& inventory_body_types() {
  static const std::vector<std::string> v = {"sedan", "suv", "mpv", "hatchback"};
  return v;
}
const std::vector<std::string>& inventory_fuel_types() {
  static const std::vector<std::string> v = {"gasoline", "hybrid", "phev", "ev"};
  return v;
}

std::string english_term(const std::string& value) {
  static const std::unordered_map<std::string, std::string> table = [] {
    std::unordered_map<std::string, std::string> t = {
        {"白色", "white"}, {"黑色", "black"}, {"灰色", "grey"}, {"银色", "silver"},
        {"蓝色", "blue"}, {"红色", "red"}, {"绿色", "green"}, {"棕色", "brown"},
        {"北京", "Beijing"}, {"天津", "Tianjin"}, {"上海", "Shanghai"}, {"杭州", "Hangzhou"},
        {"南京", "Nanjing"}, {"苏州", "Suzhou"}, {"广州", "Guangzhou"}, {"深圳", "Shenzhen"},
        {"成都", "Chengdu"}, {"重庆", "Chongqing"}, {"武汉", "Wuhan"}, {"西安", "Xi'an"},
        {"华北", "North China"}, {"华东", "East China"}, {"华南", "South China"},
        {"西南", "Southwest China"}, {"华中", "Central China"}, {"西北", "Northwest China"},
        {"东北", "Northeast China"},
        // Further cities of the pretraining corpus (data/sql_corpus.cpp), not of the inventory.
        {"青岛", "Qingdao"}, {"济南", "Jinan"}, {"宁波", "Ningbo"}, {"厦门", "Xiamen"}, {"福州", "Fuzhou"},
        {"合肥", "Hefei"}, {"长沙", "Changsha"}, {"郑州", "Zhengzhou"}, {"南昌", "Nanchang"}, {"沈阳", "Shenyang"},
        {"大连", "Dalian"}, {"哈尔滨", "Harbin"}, {"长春", "Changchun"}, {"昆明", "Kunming"}, {"贵阳", "Guiyang"},
        {"南宁", "Nanning"}, {"海口", "Haikou"}, {"东莞", "Dongguan"}, {"佛山", "Foshan"}, {"兰州", "Lanzhou"},
        {"乌鲁木齐", "Urumqi"}, {"石家庄", "Shijiazhuang"}, {"太原", "Taiyuan"}, {"呼和浩特", "Hohhot"},
    };
    for (const auto& b : inventory_brands()) {
      t[b.name] = b.english;
      for (const auto& m : b.models) t[m.name] = m.english;
    }
    return t;
  }();
  auto it = table.find(value);
  return it == table.end() ? value : it->second;
}

// ---- dates (proleptic Gregorian, Howard Hinnant's civil-day algorithms) ----

int64_t date_to_days(const std::string& date) {
  int y = std::stoi(date.substr(0, 4));
  const unsigned m = std::stoi(date.substr(5, 2));
  const unsigned d = std::stoi(date.substr(8, 2));
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

std::string days_to_date(int64_t z) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const unsigned doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const int64_t y = static_cast<int64_t>(yoe) + era * 400;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  const unsigned d = doy - (153 * mp + 2) / 5 + 1;
  const unsigned m = mp < 10 ? mp + 3 : mp - 9;
  char buf[40];
  std::snprintf(buf, sizeof buf, "%04d-%02u-%02u", static_cast<int>(y + (m <= 2)), m, d);
  return buf;
}

bool is_valid_date(const std::string& text) {
  if (text.size() != 10 || text[4] != '-' || text[7] != '-') return false;
  for (size_t i : {0, 1, 2, 3, 5, 6, 8, 9}) {
    if (!std::isdigit(static_cast<unsigned char>(text[i]))) return false;
  }
  const int m = std::stoi(text.substr(5, 2));
  const int d = std::stoi(text.substr(8, 2));
  if (m < 1 || m > 12 || d < 1 || d > 31) return false;
  return days_to_date(date_to_days(text)) == text;  // rejects 02-30 and friends
}

// ---- writing ----

namespace {

class Writer {
 public:
  explicit Writer(const std::string& path) : path_(path) {
    if (sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr) !=
        SQLITE_OK) {
      const std::string why = db_ ? sqlite3_errmsg(db_) : "out of memory";
      sqlite3_close(db_);
      fail("cannot create database " + path + ": " + why);
    }
  }
  ~Writer() {
    for (auto& [sql, st] : statements_) sqlite3_finalize(st);
    sqlite3_close(db_);
  }
  void exec(const std::string& sql) {
    char* err = nullptr;
    if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
      const std::string why = err ? err : "unknown error";
      sqlite3_free(err);
      fail("cannot write " + path_ + ": " + why);
    }
  }
  // Binds text to every parameter (SQLite's type affinity stores numbers as numbers).
  void insert(const std::string& sql, const std::vector<std::string>& values) {
    sqlite3_stmt*& st = statements_[sql];
    if (!st && sqlite3_prepare_v2(db_, sql.c_str(), -1, &st, nullptr) != SQLITE_OK) {
      fail("cannot write " + path_ + ": " + sqlite3_errmsg(db_));
    }
    sqlite3_reset(st);
    for (size_t i = 0; i < values.size(); ++i) {
      sqlite3_bind_text(st, static_cast<int>(i + 1), values[i].c_str(),
                        static_cast<int>(values[i].size()), SQLITE_TRANSIENT);
    }
    if (sqlite3_step(st) != SQLITE_DONE) fail("cannot write " + path_ + ": " + sqlite3_errmsg(db_));
  }

 private:
  std::string path_;
  sqlite3* db_ = nullptr;
  std::map<std::string, sqlite3_stmt*> statements_;
};

const char* kInsertStore = "INSERT INTO stores(store_id, name, city, region) VALUES (?, ?, ?, ?)";
const char* kInsertVehicle =
    "INSERT INTO vehicles(vehicle_id, brand, model, model_year, body_type, fuel_type, color, "
    "pickup_date, guide_price, status, store_id, mileage_km) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)";
const char* kInsertMeta = "INSERT INTO meta(key, value) VALUES (?, ?)";

// Builds the database at a temp name and renames it into place, so a reader never sees a
// half-written file and a failed run leaves the old one.
void write_db_atomic(const std::string& out_path, const std::function<void(Writer&)>& fill) {
  write_file_atomic_with(out_path, [&](const std::string& tmp) {
    std::error_code ec;
    std::filesystem::remove(tmp, ec);
    Writer w(tmp);
    w.exec("PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF;");
    w.exec(inventory_schema_sql());
    w.exec("BEGIN");
    fill(w);
    w.exec("COMMIT");
  });
}

std::string format_price(double yuan) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.0f", yuan);
  return buf;
}

}  // namespace

void generate_inventory_db(const std::string& out_path, const InventoryDbOptions& options) {
  if (options.vehicles < 1) fail("--vehicles must be at least 1 (got " + std::to_string(options.vehicles) + ")");
  if (!is_valid_date(options.as_of_date)) fail("as_of_date must be YYYY-MM-DD (got '" + options.as_of_date + "')");
  Rng rng(options.seed);
  const auto& brands = inventory_brands();
  const auto& stores = inventory_stores();
  std::vector<double> brand_weights;
  for (const auto& b : brands) brand_weights.push_back(b.weight);
  const std::vector<double> color_weights = {30, 25, 15, 10, 8, 6, 3, 3};
  const std::vector<double> status_weights = {55, 10, 25, 10};
  // Bigger cities carry more stock.
  std::vector<double> store_weights;
  for (const auto& s : stores) {
    store_weights.push_back(s.city == "北京" || s.city == "上海" || s.city == "深圳" ? 1.5 : 1.0);
  }
  const int64_t as_of = date_to_days(options.as_of_date);
  const int as_of_year = std::stoi(options.as_of_date.substr(0, 4));
  static const std::string kVinChars = "ABCDEFGHJKLMNPRSTUVWXYZ0123456789";  // no I, O, Q

  write_db_atomic(out_path, [&](Writer& w) {
    for (size_t i = 0; i < stores.size(); ++i) {
      w.insert(kInsertStore, {std::to_string(i + 1), stores[i].name, stores[i].city, stores[i].region});
    }
    std::set<std::string> used_ids;
    for (int n = 0; n < options.vehicles; ++n) {
      const BrandSpec& brand = brands[rng.weighted(brand_weights)];
      const ModelSpec& model = brand.models[rng.below(brand.models.size())];
      const std::string& fuel = model.fuel_types[rng.below(model.fuel_types.size())];
      const std::string& color = inventory_colors()[rng.weighted(color_weights)];
      const std::string& status = inventory_statuses()[rng.weighted(status_weights)];
      // Stock age: most cars arrived recently, a tail has sat for most of a year.
      const double u = rng.unit();
      const int64_t age = static_cast<int64_t>(std::floor(365.0 * u * u));
      const std::string pickup = days_to_date(as_of - age);
      const int pickup_year = std::stoi(pickup.substr(0, 4));
      const int model_year = pickup_year + static_cast<int>(rng.below(2));  // next year's cars arrive early
      const double raw = model.price_min + (model.price_max - model.price_min) * rng.unit();
      const double price = std::round(raw / 100.0) * 100.0;
      const int mileage = rng.unit() < 0.1 ? static_cast<int>(rng.between(20, 8000)) : 0;  // demo cars
      const size_t store = rng.weighted(store_weights) + 1;
      std::string vin;
      do {
        vin = brand.wmi;
        while (vin.size() < 17) vin += kVinChars[rng.below(kVinChars.size())];
      } while (!used_ids.insert(vin).second);
      w.insert(kInsertVehicle, {vin, brand.name, model.name, std::to_string(std::min(model_year, as_of_year + 1)),
                                model.body_type, fuel, color, pickup, format_price(price), status,
                                std::to_string(store), std::to_string(mileage)});
    }
    w.insert(kInsertMeta, {"as_of_date", options.as_of_date});
    w.insert(kInsertMeta, {"source", "lathe data db --seed " + std::to_string(options.seed)});
  });
  log::info("wrote " + out_path + ": " + std::to_string(options.vehicles) + " vehicles in " +
            std::to_string(stores.size()) + " stores, as of " + options.as_of_date);
}

CsvImportReport import_inventory_csv(const std::string& csv_path, const std::string& out_path,
                                     const std::string& as_of_date) {
  const std::vector<CsvRecord> records = parse_csv(read_file(csv_path), csv_path);
  if (records.empty()) fail(csv_path + ": empty file (expected a header row)");
  static const std::vector<std::string> required = {
      "vehicle_id", "brand", "model", "model_year", "body_type", "fuel_type", "color",
      "pickup_date", "guide_price", "status", "store", "city", "region"};
  std::map<std::string, size_t> col;
  for (size_t i = 0; i < records[0].fields.size(); ++i) {
    std::string name = records[0].fields[i];
    while (!name.empty() && name.back() == ' ') name.pop_back();
    col[name] = i;
  }
  for (const auto& name : required) {
    if (!col.count(name)) {
      fail(csv_path + ":" + std::to_string(records[0].line) + ": header lacks column '" + name + "'");
    }
  }
  const bool has_mileage = col.count("mileage_km") > 0;

  CsvImportReport report;
  struct Row {
    std::vector<std::string> values;  // in kInsertVehicle order, store_id filled later
    std::string store_key;
  };
  std::vector<Row> rows;
  std::set<std::string> seen_ids;
  std::map<std::string, StoreSpec> store_by_key;
  std::vector<std::string> store_order;
  std::string latest_pickup;
  auto in = [](const std::vector<std::string>& set, const std::string& v) {
    return std::find(set.begin(), set.end(), v) != set.end();
  };
  auto is_integer = [](const std::string& s) {
    if (s.empty()) return false;
    for (char c : s) if (!std::isdigit(static_cast<unsigned char>(c))) return false;
    return s.size() < 10;
  };

  for (size_t r = 1; r < records.size(); ++r) {
    const CsvRecord& rec = records[r];
    auto reject = [&](const std::string& why) {
      report.errors.push_back(csv_path + ":" + std::to_string(rec.line) + ": " + why);
      ++report.rejected;
    };
    if (rec.fields.size() != records[0].fields.size()) {
      reject("expected " + std::to_string(records[0].fields.size()) + " fields, found " +
             std::to_string(rec.fields.size()));
      continue;
    }
    auto get = [&](const char* name) { return rec.fields[col.at(name)]; };
    const std::string id = get("vehicle_id");
    std::string why;
    bool vin_ok = id.size() == 17;
    for (char c : id) vin_ok = vin_ok && std::isalnum(static_cast<unsigned char>(c));
    char* end = nullptr;
    const std::string price_text = get("guide_price");
    const double price = std::strtod(price_text.c_str(), &end);
    const bool price_ok = !price_text.empty() && end == price_text.c_str() + price_text.size() &&
                          std::isfinite(price) && price > 0;
    const std::string mileage = has_mileage ? get("mileage_km") : "0";
    if (!vin_ok) why = "vehicle_id '" + id + "' is not a 17-character alphanumeric id";
    else if (seen_ids.count(id)) why = "duplicate vehicle_id '" + id + "'";
    else if (get("brand").empty() || get("model").empty() || get("color").empty())
      why = "brand, model and color must not be empty";
    else if (!is_integer(get("model_year"))) why = "model_year '" + get("model_year") + "' is not a year";
    else if (!in(inventory_body_types(), get("body_type")))
      why = "body_type '" + get("body_type") + "' is not one of sedan, suv, mpv, hatchback";
    else if (!in(inventory_fuel_types(), get("fuel_type")))
      why = "fuel_type '" + get("fuel_type") + "' is not one of gasoline, hybrid, phev, ev";
    else if (!is_valid_date(get("pickup_date")))
      why = "pickup_date '" + get("pickup_date") + "' is not a YYYY-MM-DD date";
    else if (!price_ok) why = "guide_price '" + price_text + "' is not a positive number";
    else if (!in(inventory_statuses(), get("status")))
      why = "status '" + get("status") + "' is not one of in_stock, reserved, sold, in_transit";
    else if (get("store").empty() || get("city").empty() || get("region").empty())
      why = "store, city and region must not be empty";
    else if (!mileage.empty() && !is_integer(mileage)) why = "mileage_km '" + mileage + "' is not an integer";
    if (!why.empty()) {
      reject(why);
      continue;
    }
    seen_ids.insert(id);
    const std::string key = get("store") + "\x1f" + get("city") + "\x1f" + get("region");
    if (!store_by_key.count(key)) {
      store_by_key[key] = {get("store"), get("city"), get("region")};
      store_order.push_back(key);
    }
    if (get("pickup_date") > latest_pickup) latest_pickup = get("pickup_date");
    rows.push_back({{id, get("brand"), get("model"), get("model_year"), get("body_type"),
                     get("fuel_type"), get("color"), get("pickup_date"), price_text,
                     get("status"), "", mileage.empty() ? "0" : mileage},
                    key});
  }
  for (const auto& e : report.errors) log::warn(e);
  if (rows.empty()) {
    fail(csv_path + ": no valid rows (" + std::to_string(report.rejected) + " rejected)");
  }
  const std::string as_of = as_of_date.empty() ? latest_pickup : as_of_date;
  if (!is_valid_date(as_of)) fail("as_of_date must be YYYY-MM-DD (got '" + as_of + "')");
  std::map<std::string, int> store_ids;
  write_db_atomic(out_path, [&](Writer& w) {
    for (size_t i = 0; i < store_order.size(); ++i) {
      const StoreSpec& s = store_by_key[store_order[i]];
      store_ids[store_order[i]] = static_cast<int>(i + 1);
      w.insert(kInsertStore, {std::to_string(i + 1), s.name, s.city, s.region});
    }
    for (auto& row : rows) {
      row.values[10] = std::to_string(store_ids[row.store_key]);
      w.insert(kInsertVehicle, row.values);
    }
    w.insert(kInsertMeta, {"as_of_date", as_of});
    w.insert(kInsertMeta, {"source", "import " + csv_path});
  });
  report.imported = static_cast<int>(rows.size());
  log::info("imported " + std::to_string(report.imported) + " vehicles from " + csv_path + " (" +
            std::to_string(report.rejected) + " rows rejected)");
  return report;
}

}  // namespace lathe::data
