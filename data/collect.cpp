// Collect: template families and user-question import.
//
// Slot kinds: brand model color city region store body fuel status year vid month
// (month_start, month_end) date_from date_to days price_lo price_hi n, plus {age}, the
// "days in stock" expression against meta.as_of_date. Each slot has a Chinese surface form,
// an English one and an SQL literal; brands, models, colours and places are stored in
// Chinese, so English questions name them in English (BMW → '宝马') as staff would.
#include "data/collect.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <set>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/log.h"
#include "data/inventory_db.h"
#include "data/question_slots.h"
#include "data/rng.h"
#include "data/text_io.h"

namespace lathe::data {

namespace {

const char* kAge = "julianday((SELECT value FROM meta WHERE key = 'as_of_date')) - julianday(pickup_date)";
const char* kJoin = "FROM vehicles v JOIN stores s ON v.store_id = s.store_id";

}  // namespace

const std::vector<TemplateFamily>& template_families() {
  static const std::vector<TemplateFamily> families = [] {
    const std::string J = kJoin;
    std::vector<TemplateFamily> f = {
        {"count_brand",
         {"{brand}一共有多少辆车？", "我们有几辆{brand}？", "统计一下{brand}的车辆总数"},
         {"How many {brand} vehicles do we have?", "Count all {brand} cars in the inventory.",
          "What is the total number of {brand} vehicles?"},
         "SELECT COUNT(*) FROM vehicles WHERE brand = {brand}"},
        {"count_brand_in_stock",
         {"{brand}还有几辆在库？", "现在在库的{brand}有多少辆？", "{brand}目前库存多少台？"},
         {"How many {brand} cars are in stock?", "Number of {brand} vehicles currently in stock?",
          "How many {brand} units do we still have in stock?"},
         "SELECT COUNT(*) FROM vehicles WHERE brand = {brand} AND status = 'in_stock'"},
        {"count_model",
         {"{model}有多少辆？", "{model}一共几台？", "统计{model}的数量"},
         {"How many {model} vehicles are there?", "Count the {model} cars.",
          "What's the number of {model} units across all stores?"},
         "SELECT COUNT(*) FROM vehicles WHERE model = {model}"},
        {"count_status",
         {"{status}的车有多少辆？", "状态为{status}的车辆数量是多少？", "目前{status}的车一共几台？"},
         {"How many vehicles are {status}?", "Count the vehicles whose status is {status}.",
          "What is the number of cars that are {status}?"},
         "SELECT COUNT(*) FROM vehicles WHERE status = {status}"},
        {"count_color_brand",
         {"{color}的{brand}有几辆？", "{brand}里{color}的车有多少？", "统计{color}{brand}车辆的数量"},
         {"How many {color} {brand} cars do we have?", "Count {brand} vehicles in {color}.",
          "Number of {brand} cars painted {color}?"},
         "SELECT COUNT(*) FROM vehicles WHERE brand = {brand} AND color = {color}"},
        {"count_fuel_in_stock",
         {"在库的{fuel}车有多少辆？", "{fuel}车型现在库存几台？", "目前在库{fuel}车辆总数是多少？"},
         {"How many {fuel} cars are in stock?", "Count in-stock {fuel} vehicles.",
          "What is the number of {fuel} vehicles currently in stock?"},
         "SELECT COUNT(*) FROM vehicles WHERE fuel_type = {fuel} AND status = 'in_stock'"},
        {"count_body_city",
         {"{city}有多少辆{body}？", "{city}的门店一共有几台{body}？", "统计{city}所有门店的{body}数量"},
         {"How many {body}s are there in {city}?", "Count {body} vehicles at our {city} stores.",
          "Number of {body}s across stores in {city}?"},
         "SELECT COUNT(*) " + J + " WHERE s.city = {city} AND v.body_type = {body}"},
        {"count_region_in_stock",
         {"{region}地区在库车辆有多少？", "{region}区域目前库存多少台车？", "统计{region}的在库车数"},
         {"How many vehicles are in stock in {region}?", "Count in-stock vehicles in the {region} region.",
          "What is the in-stock count for {region}?"},
         "SELECT COUNT(*) " + J + " WHERE s.region = {region} AND v.status = 'in_stock'"},
        {"count_store",
         {"{store}有多少辆车？", "{store}一共有几台车？", "统计{store}的车辆总数"},
         {"How many vehicles does {store} have?", "Count all cars at store {store}.",
          "Total number of vehicles at {store}?"},
         "SELECT COUNT(*) " + J + " WHERE s.name = {store}"},
        {"list_model_color",
         {"列出所有{color}的{model}的车辆编号", "{color}{model}有哪些车？给我车辆编号", "查一下{color}{model}的vehicle_id"},
         {"List the vehicle ids of all {color} {model} cars.",
          "Which {color} {model} vehicles do we have? Give their ids.",
          "Show the ids of {model} vehicles in {color}."},
         "SELECT vehicle_id FROM vehicles WHERE model = {model} AND color = {color}"},
        {"list_store_brand_in_stock",
         {"{store}在库的{brand}有哪些？", "列出{store}目前在库的{brand}车辆", "{store}库存里的{brand}有哪些车？"},
         {"Which {brand} cars are in stock at {store}?", "List in-stock {brand} vehicles at {store}.",
          "Show the {brand} vehicles currently in stock at {store}."},
         "SELECT v.vehicle_id, v.model " + J +
             " WHERE s.name = {store} AND v.brand = {brand} AND v.status = 'in_stock'"},
        {"lookup_pickup_date",
         {"{vid}的接车日期是哪天？", "车辆{vid}是什么时候接车的？", "查询{vid}的接车日期"},
         {"What is the pickup date of vehicle {vid}?", "When was {vid} picked up into stock?",
          "On which date did vehicle {vid} enter stock?"},
         "SELECT pickup_date FROM vehicles WHERE vehicle_id = {vid}"},
        {"lookup_guide_price",
         {"{vid}的指导价是多少？", "车辆{vid}的指导价格是多少钱？", "查一下{vid}的官方指导价"},
         {"What is the guide price of vehicle {vid}?", "How much is the guide price for {vid}?",
          "Look up the MSRP of vehicle {vid}."},
         "SELECT guide_price FROM vehicles WHERE vehicle_id = {vid}"},
        {"lookup_pickup_and_price",
         {"{vid}的接车日期和指导价格分别是多少？", "查询车辆{vid}的接车日期和指导价"},
         {"Give me the pickup date and guide price of {vid}.",
          "What are the pickup date and guide price of vehicle {vid}?"},
         "SELECT pickup_date, guide_price FROM vehicles WHERE vehicle_id = {vid}"},
        {"lookup_store",
         {"{vid}在哪个门店、哪个城市？", "车辆{vid}在哪家店？在什么城市？"},
         {"Which store and city is vehicle {vid} at?", "Where is {vid} located (store and city)?"},
         "SELECT s.name, s.city " + J + " WHERE v.vehicle_id = {vid}"},
        {"lookup_days_in_stock",
         {"{vid}已经在库多少天了？", "车辆{vid}的库龄是多少天？", "{vid}接车到现在多少天？"},
         {"How many days has vehicle {vid} been in stock?", "What is the stock age in days of {vid}?",
          "How long (in days) since {vid} was picked up?"},
         "SELECT CAST({age} AS INTEGER) FROM vehicles WHERE vehicle_id = {vid}"},
        {"lookup_status",
         {"{vid}现在是什么状态？", "车辆{vid}卖掉了吗？状态是什么？"},
         {"What is the status of vehicle {vid}?", "Is {vid} still in stock? Show its status."},
         "SELECT status FROM vehicles WHERE vehicle_id = {vid}"},
        {"count_pickup_since_brand_in_stock",
         {"{month}以后接车的{brand}还有几辆在库？", "{month}之后入库的{brand}目前在库多少辆？",
          "从{month}开始接车、仍在库的{brand}有多少？"},
         {"How many {brand} cars picked up since {month} are still in stock?",
          "Count in-stock {brand} vehicles with a pickup date from {month} onwards.",
          "Of the {brand} cars that arrived in {month} or later, how many are in stock?"},
         "SELECT COUNT(*) FROM vehicles WHERE brand = {brand} AND status = 'in_stock' AND pickup_date >= {month_start}"},
        {"count_pickup_in_month",
         {"{month}接车的车辆有多少？", "{month}一共入库了几台车？", "统计{month}的接车数量"},
         {"How many vehicles were picked up in {month}?", "Count the cars that entered stock during {month}.",
          "Number of pickups in {month}?"},
         "SELECT COUNT(*) FROM vehicles WHERE pickup_date >= {month_start} AND pickup_date < {month_end}"},
        {"list_pickup_between_model",
         {"{date_from}到{date_to}之间接车的{model}有哪些？", "列出{date_from}至{date_to}期间入库的{model}"},
         {"Which {model} cars were picked up between {date_from} and {date_to}?",
          "List {model} vehicles with pickup dates from {date_from} to {date_to}."},
         "SELECT vehicle_id, pickup_date FROM vehicles WHERE model = {model} AND pickup_date BETWEEN {date_from} AND {date_to}"},
        {"count_days_over_in_stock",
         {"在库超过{days}天的车有多少辆？", "库龄超过{days}天的在库车辆有几台？", "有多少辆在库车已经放了{days}天以上？"},
         {"How many in-stock cars have been in stock for more than {days} days?",
          "Count vehicles in stock longer than {days} days.",
          "Number of in-stock vehicles older than {days} days?"},
         "SELECT COUNT(*) FROM vehicles WHERE status = 'in_stock' AND {age} > {days}"},
        {"list_days_over_brand",
         {"{brand}里在库超过{days}天的车辆有哪些？", "列出库龄超过{days}天的在库{brand}"},
         {"Which in-stock {brand} cars have been in stock over {days} days?",
          "List {brand} vehicles in stock for more than {days} days."},
         "SELECT vehicle_id, pickup_date FROM vehicles WHERE brand = {brand} AND status = 'in_stock' AND {age} > {days}"},
        {"avg_days_in_stock_brand",
         {"在库{brand}的平均库龄是多少天？", "{brand}在库车辆平均放了多少天？"},
         {"What is the average stock age in days of in-stock {brand} cars?",
          "On average, how many days have in-stock {brand} vehicles been in stock?"},
         "SELECT AVG({age}) FROM vehicles WHERE brand = {brand} AND status = 'in_stock'"},
        {"count_price_below_in_stock",
         {"指导价低于{price_hi}的在库车有多少？", "在库车里指导价{price_hi}以下的有几辆？",
          "在库车辆中指导价不到{price_hi}的有多少？"},
         {"How many in-stock cars have a guide price below {price_hi}?",
          "Count in-stock vehicles priced under {price_hi}.",
          "Number of in-stock vehicles with a guide price less than {price_hi}?"},
         "SELECT COUNT(*) FROM vehicles WHERE status = 'in_stock' AND guide_price < {price_hi}"},
        {"count_price_between_body",
         {"指导价在{price_lo}到{price_hi}之间的{body}有几辆？", "{price_lo}到{price_hi}价位的{body}有多少台？"},
         {"How many {body}s have a guide price between {price_lo} and {price_hi}?",
          "Count {body} vehicles priced from {price_lo} to {price_hi}."},
         "SELECT COUNT(*) FROM vehicles WHERE body_type = {body} AND guide_price BETWEEN {price_lo} AND {price_hi}"},
        {"list_price_above_city_in_stock",
         {"{city}指导价超过{price_lo}的在库车有哪些？", "列出{city}在库且指导价高于{price_lo}的车辆"},
         {"Which in-stock cars in {city} have a guide price above {price_lo}?",
          "List in-stock vehicles in {city} priced over {price_lo}."},
         "SELECT v.vehicle_id, v.brand, v.model, v.guide_price " + J +
             " WHERE s.city = {city} AND v.status = 'in_stock' AND v.guide_price > {price_lo}"},
        {"avg_price_brand",
         {"{brand}的平均指导价是多少？", "{brand}车辆指导价的平均值", "{brand}平均指导价格多少钱？"},
         {"What is the average guide price of {brand} vehicles?", "Average MSRP of {brand} cars?",
          "Compute the mean guide price for {brand}."},
         "SELECT AVG(guide_price) FROM vehicles WHERE brand = {brand}"},
        {"avg_price_city_body_in_stock",
         {"{city}在库{body}的平均指导价是多少？", "{city}目前在库的{body}平均指导价"},
         {"Average guide price of in-stock {body}s in {city}?",
          "What is the mean guide price of {body}s currently in stock in {city}?"},
         "SELECT AVG(v.guide_price) " + J +
             " WHERE s.city = {city} AND v.body_type = {body} AND v.status = 'in_stock'"},
        {"max_price_brand",
         {"{brand}最贵的车指导价是多少？", "{brand}里指导价最高是多少？"},
         {"What is the highest guide price among {brand} vehicles?", "Most expensive {brand} car's guide price?"},
         "SELECT MAX(guide_price) FROM vehicles WHERE brand = {brand}"},
        {"min_price_fuel_in_stock",
         {"在库{fuel}车里最便宜的指导价是多少？", "{fuel}在库车辆的最低指导价"},
         {"What is the lowest guide price among in-stock {fuel} cars?",
          "Cheapest guide price of in-stock {fuel} vehicles?"},
         "SELECT MIN(guide_price) FROM vehicles WHERE fuel_type = {fuel} AND status = 'in_stock'"},
        {"sum_price_store_in_stock",
         {"{store}在库车辆的指导价总额是多少？", "{store}库存车辆指导价加起来多少钱？"},
         {"What is the total guide price of in-stock vehicles at {store}?",
          "Sum of guide prices for the in-stock cars at {store}?"},
         "SELECT SUM(v.guide_price) " + J + " WHERE s.name = {store} AND v.status = 'in_stock'"},
        {"top_price_vehicle_city",
         {"{city}指导价最高的车是哪辆？", "{city}最贵的一台车是什么？给出车辆编号和价格"},
         {"Which vehicle in {city} has the highest guide price?",
          "Find the most expensive car in {city} with its id and price."},
         "SELECT v.vehicle_id, v.brand, v.model, v.guide_price " + J +
             " WHERE s.city = {city} ORDER BY v.guide_price DESC, v.vehicle_id LIMIT 1"},
        {"group_brand_count_status",
         {"各品牌{status}的车辆数分别是多少？按数量从多到少排", "按品牌统计{status}车辆数量，从多到少排列"},
         {"How many {status} vehicles does each brand have? Most first.",
          "Count vehicles that are {status} per brand, in descending order."},
         "SELECT brand, COUNT(*) AS n FROM vehicles WHERE status = {status} GROUP BY brand ORDER BY n DESC, brand"},
        {"topn_brands_in_stock",
         {"在库数量最多的前{n}个品牌是哪些？", "库存最多的{n}个品牌及其在库数量"},
         {"Which {n} brands have the most cars in stock?", "Top {n} brands by in-stock count."},
         "SELECT brand, COUNT(*) AS n FROM vehicles WHERE status = 'in_stock' GROUP BY brand ORDER BY n DESC, brand LIMIT {n}"},
        {"group_city_count_body",
         {"每个城市各有多少辆{body}？按数量从多到少", "按城市统计{body}数量，降序排列"},
         {"How many {body}s does each city have, most first?", "Count {body}s per city in descending order."},
         "SELECT s.city, COUNT(*) AS n " + J +
             " WHERE v.body_type = {body} GROUP BY s.city ORDER BY n DESC, s.city"},
        {"group_region_avg_price_fuel",
         {"各区域{fuel}车的平均指导价是多少？", "按区域统计{fuel}车辆的平均指导价"},
         {"What is the average guide price of {fuel} cars in each region?",
          "Average {fuel} vehicle guide price per region."},
         "SELECT s.region, AVG(v.guide_price) " + J + " WHERE v.fuel_type = {fuel} GROUP BY s.region"},
        {"group_color_count_model",
         {"{model}各颜色分别有几辆？", "按颜色统计{model}的数量"},
         {"How many {model} cars are there in each colour?", "Count {model} vehicles by color."},
         "SELECT color, COUNT(*) FROM vehicles WHERE model = {model} GROUP BY color"},
        {"topn_models_brand_in_stock",
         {"{brand}库存最多的前{n}个车型是哪些？", "{brand}哪{n}个车型在库数量最多？"},
         {"Which {n} {brand} models have the most vehicles in stock?", "Top {n} {brand} models by in-stock count."},
         "SELECT model, COUNT(*) AS n FROM vehicles WHERE brand = {brand} AND status = 'in_stock' "
         "GROUP BY model ORDER BY n DESC, model LIMIT {n}"},
        {"topn_stores_in_stock",
         {"在库车辆最多的{n}家门店是哪些？", "库存量排名前{n}的门店"},
         {"Which {n} stores have the most vehicles in stock?", "Top {n} stores by in-stock vehicle count."},
         "SELECT s.name, COUNT(*) AS n " + J +
             " WHERE v.status = 'in_stock' GROUP BY s.store_id, s.name ORDER BY n DESC, s.name LIMIT {n}"},
        {"topn_oldest_in_stock_city",
         {"{city}库龄最长的{n}辆在库车是哪些？", "{city}在库时间最久的前{n}台车"},
         {"Which {n} in-stock cars in {city} have been in stock the longest?",
          "The {n} oldest in-stock vehicles in {city} by pickup date."},
         "SELECT v.vehicle_id, v.pickup_date " + J +
             " WHERE s.city = {city} AND v.status = 'in_stock' ORDER BY v.pickup_date, v.vehicle_id LIMIT {n}"},
        {"neg_city_not_brand",
         {"{city}除了{brand}以外还有多少辆车？", "{city}非{brand}品牌的车辆数量"},
         {"How many vehicles in {city} are not {brand}?", "Count cars in {city} excluding {brand}."},
         "SELECT COUNT(*) " + J + " WHERE s.city = {city} AND v.brand <> {brand}"},
        {"neg_model_not_sold",
         {"{model}还没卖出去的有几辆？", "未售出的{model}有多少台？"},
         {"How many {model} cars are not sold yet?", "Count {model} vehicles whose status is not sold."},
         "SELECT COUNT(*) FROM vehicles WHERE model = {model} AND status <> 'sold'"},
        {"neg_region_not_ev_in_stock",
         {"{region}非纯电的在库车辆有多少？", "{region}在库车中不是纯电动的有几台？"},
         {"How many in-stock vehicles in {region} are not electric?", "Count non-EV in-stock cars in {region}."},
         "SELECT COUNT(*) " + J + " WHERE s.region = {region} AND v.status = 'in_stock' AND v.fuel_type <> 'ev'"},
        {"combo_city_color_brand_in_stock",
         {"{city}在库的{color}{brand}有几辆？", "{city}目前有几台{color}的{brand}在库？"},
         {"How many {color} {brand} cars are in stock in {city}?", "Count in-stock {color} {brand} vehicles in {city}."},
         "SELECT COUNT(*) " + J +
             " WHERE s.city = {city} AND v.brand = {brand} AND v.color = {color} AND v.status = 'in_stock'"},
        {"combo_region_fuel_price_below",
         {"{region}指导价低于{price_hi}的{fuel}车有多少？", "{region}有几台{price_hi}以下的{fuel}车？"},
         {"How many {fuel} cars in {region} are priced below {price_hi}?",
          "Count {fuel} vehicles in {region} with a guide price under {price_hi}."},
         "SELECT COUNT(*) " + J + " WHERE s.region = {region} AND v.fuel_type = {fuel} AND v.guide_price < {price_hi}"},
        {"count_model_year_brand",
         {"{year}款的{brand}有多少辆？", "{brand}的{year}年款车型有几台？"},
         {"How many {year} model-year {brand} cars do we have?", "Count {brand} vehicles of model year {year}."},
         "SELECT COUNT(*) FROM vehicles WHERE brand = {brand} AND model_year = {year}"},
        {"distinct_models_brand",
         {"{brand}都有哪些车型？", "列出{brand}的所有车型"},
         {"Which {brand} models do we carry?", "List all {brand} models in the inventory."},
         "SELECT DISTINCT model FROM vehicles WHERE brand = {brand}"},
        {"distinct_colors_model_in_stock",
         {"在库的{model}有哪些颜色？", "{model}现在库存有什么颜色可选？"},
         {"What colours are available for in-stock {model} cars?", "Which colors of {model} are in stock?"},
         "SELECT DISTINCT color FROM vehicles WHERE model = {model} AND status = 'in_stock'"},
        {"count_stores_city",
         {"{city}有几家门店？", "我们在{city}有多少个店？"},
         {"How many stores do we have in {city}?", "Number of stores in {city}?"},
         "SELECT COUNT(*) FROM stores WHERE city = {city}"},
        {"list_stores_region",
         {"{region}有哪些门店？", "列出{region}区域的所有门店及城市"},
         {"Which stores are in the {region} region?", "List stores and their cities in {region}."},
         "SELECT name, city FROM stores WHERE region = {region}"},
        {"count_demo_mileage_brand",
         {"{brand}有里程的车（试驾车）有几辆？", "{brand}里程数大于0的车辆有多少？"},
         {"How many {brand} cars have mileage on them (demo cars)?", "Count {brand} vehicles with mileage above 0 km."},
         "SELECT COUNT(*) FROM vehicles WHERE brand = {brand} AND mileage_km > 0"},
        {"group_status_brand",
         {"{brand}各状态的车辆分别有多少？", "按状态统计{brand}车辆数"},
         {"How many {brand} vehicles are in each status?", "Count {brand} cars per status."},
         "SELECT status, COUNT(*) FROM vehicles WHERE brand = {brand} GROUP BY status"},
        {"avg_price_model",
         {"{model}的平均指导价是多少？", "{model}平均指导价格多少钱？"},
         {"Average guide price of the {model}?", "What is the mean guide price of {model} vehicles?"},
         "SELECT AVG(guide_price) FROM vehicles WHERE model = {model}"},
    };
    return f;
  }();
  return families;
}

std::string fill_template(const std::string& text, const std::map<std::string, std::string>& values) {
  std::string out;
  size_t i = 0;
  while (i < text.size()) {
    if (text[i] == '{') {
      const size_t end = text.find('}', i);
      if (end == std::string::npos) fail("template '" + text + "': unclosed '{'");
      const std::string key = text.substr(i + 1, end - i - 1);
      auto it = values.find(key);
      if (it == values.end()) fail("template '" + text + "': no value for slot {" + key + "}");
      out += it->second;
      i = end + 1;
    } else {
      out += text[i++];
    }
  }
  return out;
}

namespace {

struct VehicleFacts {
  std::string id, brand, model, year, body, fuel, color, pickup, status, store, city, region;
  double price = 0;
};


std::string zh_status(const std::string& s) {
  if (s == "in_stock") return "在库";
  if (s == "reserved") return "已预订";
  if (s == "sold") return "已售出";
  if (s == "in_transit") return "在途";
  return s;
}
std::string en_status(const std::string& s) {
  if (s == "in_stock") return "in stock";
  if (s == "in_transit") return "in transit";
  return s;
}
std::string zh_body(const std::string& s) {
  if (s == "sedan") return "轿车";
  if (s == "suv") return "SUV";
  if (s == "mpv") return "MPV";
  if (s == "hatchback") return "两厢车";
  return s;
}
std::string en_body(const std::string& s) {
  if (s == "suv") return "SUV";
  if (s == "mpv") return "MPV";
  return s;
}
std::string zh_fuel(const std::string& s) {
  if (s == "gasoline") return "燃油";
  if (s == "hybrid") return "油电混动";
  if (s == "phev") return "插电混动";
  if (s == "ev") return "纯电";
  return s;
}
std::string en_fuel(const std::string& s) {
  if (s == "phev") return "plug-in hybrid";
  if (s == "ev") return "electric";
  return s;
}

std::string zh_price(int64_t yuan) { return std::to_string(yuan / 10000) + "万"; }
std::string en_price(int64_t yuan) {
  std::string digits = std::to_string(yuan);
  std::string out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out + " yuan";
}

QuestionSlots draw_slots(const VehicleFacts& v, int64_t as_of_days, Rng& rng) {
  QuestionSlots s;
  s.set("brand", v.brand, english_term(v.brand), sql_literal(v.brand));
  s.set("model", v.model, english_term(v.model), sql_literal(v.model));
  s.set("color", v.color, english_term(v.color), sql_literal(v.color));
  s.set("city", v.city, english_term(v.city), sql_literal(v.city));
  s.set("region", v.region, english_term(v.region), sql_literal(v.region));
  s.set("store", v.store, v.store, sql_literal(v.store));
  s.set("body", zh_body(v.body), en_body(v.body), sql_literal(v.body));
  s.set("fuel", zh_fuel(v.fuel), en_fuel(v.fuel), sql_literal(v.fuel));
  s.set("status", zh_status(v.status), en_status(v.status), sql_literal(v.status));
  s.set("year", v.year, v.year, v.year);
  s.set("vid", v.id, v.id, sql_literal(v.id));
  s.set("age", "", "", kAge);

  // The vehicle's own pickup month and a window around its pickup date, so date filters match it.
  s.set_dates(v.pickup, as_of_days, rng);
  const int64_t pickup_days = date_to_days(v.pickup);

  // A threshold below this vehicle's age, so "in stock over N days" usually includes it.
  const int64_t age = as_of_days - pickup_days;
  std::vector<int> candidates;
  for (int d : {7, 15, 30, 45, 60, 90, 120, 180, 270}) {
    if (d < age) candidates.push_back(d);
  }
  const int days = candidates.empty() ? 7 : candidates[rng.below(candidates.size())];
  s.set("days", std::to_string(days), std::to_string(days), std::to_string(days));

  // Price bounds on a 50,000-yuan grid around the vehicle's own price.
  const int64_t step = 50000;
  const int64_t lo = static_cast<int64_t>(std::floor(v.price / step)) * step;
  const int64_t hi = lo + step;
  s.set("price_lo", zh_price(lo), en_price(lo), std::to_string(lo));
  s.set("price_hi", zh_price(hi), en_price(hi), std::to_string(hi));

  static const int kTopN[] = {3, 5, 10};
  const int n = kTopN[rng.below(3)];
  s.set("n", std::to_string(n), std::to_string(n), std::to_string(n));
  return s;
}

std::vector<VehicleFacts> load_vehicles(const SqlDatabase& db) {
  SqlLimits limits;
  limits.max_rows = 10'000'000;
  limits.timeout_seconds = 60;
  const SqlResult r = db.query(
      "SELECT v.vehicle_id, v.brand, v.model, v.model_year, v.body_type, v.fuel_type, v.color, "
      "v.pickup_date, v.status, s.name, s.city, s.region, v.guide_price " +
          std::string(kJoin) + " ORDER BY v.vehicle_id",
      limits);
  std::vector<VehicleFacts> out;
  for (const auto& row : r.rows) {
    auto at = [&](size_t i) { return row[i] ? *row[i] : std::string(); };
    VehicleFacts f{at(0), at(1), at(2), at(3), at(4), at(5), at(6), at(7), at(8), at(9), at(10), at(11)};
    f.price = std::atof(at(12).c_str());
    out.push_back(std::move(f));
  }
  return out;
}

}  // namespace

std::vector<Example> collect_template_questions(const SqlDatabase& db, const CollectOptions& options) {
  if (options.per_family < 1) fail("collect.per_family must be at least 1");
  const std::vector<VehicleFacts> vehicles = load_vehicles(db);
  if (vehicles.empty()) fail("database " + db.path() + " has no vehicles to draw question slots from");
  const SqlResult as_of = db.query("SELECT value FROM meta WHERE key = 'as_of_date'");
  if (as_of.rows.empty() || !as_of.rows[0][0] || !is_valid_date(*as_of.rows[0][0])) {
    fail("database " + db.path() + " lacks a valid meta.as_of_date");
  }
  const int64_t as_of_days = date_to_days(*as_of.rows[0][0]);

  std::vector<Example> out;
  for (const TemplateFamily& family : template_families()) {
    // A per-family stream: adding a family does not change the others' questions.
    Rng rng(options.seed ^ stable_hash(family.name));
    std::set<std::string> seen;
    int made = 0;
    for (int attempt = 0; attempt < options.per_family * 10 && made < options.per_family; ++attempt) {
      const bool zh = made % 2 == 0;
      const VehicleFacts& v = vehicles[rng.below(vehicles.size())];
      const QuestionSlots slots = draw_slots(v, as_of_days, rng);
      const auto& phrasings = zh ? family.zh : family.en;
      const std::string question = fill_template(phrasings[rng.below(phrasings.size())], zh ? slots.zh : slots.en);
      if (!seen.insert(question).second) continue;
      char id[32];
      std::snprintf(id, sizeof id, "-%04d", made);
      out.push_back({family.name + id, family.name, zh ? "zh" : "en", question,
                     fill_template(family.sql, slots.sql), nullptr, ""});
      ++made;
    }
  }
  log::info("collected " + std::to_string(out.size()) + " template questions from " +
            std::to_string(template_families().size()) + " families");
  return out;
}

ImportReport import_user_questions(const std::string& path) {
  ImportReport report;
  const std::string ext = std::filesystem::path(path).extension().string();
  int index = 0;
  auto add = [&](const std::string& where, const std::string& question, const std::string& sql, std::string family,
                 std::string language) {
    if (family.empty()) family = "user";
    if (language.empty()) language = contains_cjk(question) ? "zh" : "en";
    char id[32];
    std::snprintf(id, sizeof id, "user-%05d", index++);
    report.examples.push_back({id, family, language, question, sql, nullptr, where});
  };
  if (ext == ".jsonl" || ext == ".json") {
    for (const auto& line : read_jsonl_lines(path)) {
      const std::string where = path + ":" + std::to_string(line.line);
      nlohmann::json j;
      try {
        j = nlohmann::json::parse(line.text);
      } catch (const nlohmann::json::exception&) {
        report.errors.push_back(where + ": invalid JSON");
        continue;
      }
      if (!j.is_object()) {
        report.errors.push_back(where + ": expected a JSON object");
        continue;
      }
      std::string fields[4];
      const char* names[4] = {"question", "sql", "family", "language"};
      std::string why;
      for (int k = 0; k < 4; ++k) {
        auto it = j.find(names[k]);
        if (it == j.end() || it->is_null()) continue;
        if (!it->is_string()) {
          why = std::string("\"") + names[k] + "\" must be a string";
          break;
        }
        fields[k] = it->get<std::string>();
      }
      if (why.empty() && fields[0].find_first_not_of(" \t") == std::string::npos) why = "missing \"question\"";
      if (why.empty() && !fields[3].empty() && fields[3] != "zh" && fields[3] != "en") {
        why = "\"language\" must be zh or en";
      }
      if (!why.empty()) {
        report.errors.push_back(where + ": " + why);
        continue;
      }
      add(where, fields[0], fields[1], fields[2], fields[3]);
    }
  } else if (ext == ".csv") {
    const auto records = parse_csv(read_file(path), path);
    if (records.empty()) fail(path + ": empty file (expected a header row with 'question')");
    int q = -1, s = -1, f = -1, l = -1;
    for (size_t i = 0; i < records[0].fields.size(); ++i) {
      const std::string& name = records[0].fields[i];
      if (name == "question") q = static_cast<int>(i);
      if (name == "sql") s = static_cast<int>(i);
      if (name == "family") f = static_cast<int>(i);
      if (name == "language") l = static_cast<int>(i);
    }
    if (q < 0) fail(path + ":" + std::to_string(records[0].line) + ": header lacks column 'question'");
    for (size_t r = 1; r < records.size(); ++r) {
      const auto& rec = records[r];
      const std::string where = path + ":" + std::to_string(rec.line);
      if (rec.fields.size() != records[0].fields.size()) {
        report.errors.push_back(where + ": expected " + std::to_string(records[0].fields.size()) +
                                " fields, found " + std::to_string(rec.fields.size()));
        continue;
      }
      auto get = [&](int i) { return i < 0 ? std::string() : rec.fields[i]; };
      if (get(q).find_first_not_of(" \t") == std::string::npos) {
        report.errors.push_back(where + ": empty question");
        continue;
      }
      if (!get(l).empty() && get(l) != "zh" && get(l) != "en") {
        report.errors.push_back(where + ": language must be zh or en");
        continue;
      }
      add(where, get(q), get(s), get(f), get(l));
    }
  } else {
    fail(path + ": unknown question file type '" + ext + "' (expected .jsonl or .csv)");
  }
  for (const auto& e : report.errors) log::warn(e);
  log::info("imported " + std::to_string(report.examples.size()) + " questions from " + path + " (" +
            std::to_string(report.errors.size()) + " rows rejected)");
  return report;
}

}  // namespace lathe::data
