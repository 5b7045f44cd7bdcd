// The pretraining corpus: schema specs, their generated databases, generic question families.
//
// A family's text uses the schema's nouns ({e} 商品 / {es} products, {mw} the Chinese measure
// word, {c1n} the first category's name, ...) and slot values drawn from one real entity row
// ({v1} its first category, {site}, {city}, {id}, ...), so a filter usually matches at least
// that row; the gold SQL uses the schema's table and column names ({T}, {C1}, {M}, ...).
#include "data/sql_corpus.h"

#include <sqlite3.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <set>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/log.h"
#include "data/collect.h"
#include "data/inventory_db.h"
#include "data/label.h"
#include "data/question_slots.h"
#include "data/rng.h"
#include "data/sql_exec.h"

namespace lathe::data {

namespace fs = std::filesystem;

namespace {

struct Term {
  std::string stored, zh, en;  // the value in the database, and how each language names it
};

struct Category {
  std::string column, zh_noun, en_noun;
  std::vector<Term> values;
};

struct SchemaSpec {
  std::string name, subject;
  std::string site_table, site_key, site_zh, site_en, sites_en, site_suffix;
  std::string table, id_column, id_prefix, entity_zh, entities_en, measure_word;
  Category c1, c2;
  std::string status_column;
  std::vector<Term> statuses;  // statuses[0]: the "active" state most questions ask about
  std::string measure, measure_zh, measure_en, measure_unit;
  double measure_lo, measure_hi;
  int measure_decimals;
  std::string count, count_zh, count_en;
  int count_lo, count_hi;
  std::string date, date_zh, date_en, age_zh, age_en;
};

const std::vector<SchemaSpec>& schema_specs() {
  static const std::vector<SchemaSpec> specs = {
      {"shop", "an electronics retail chain's product catalogue",
       "branches", "branch_id", "门店", "branch", "branches", "店",
       "products", "sku", "SKU", "商品", "products", "件",
       {"brand", "品牌", "brand",
        {{"华为", "华为", "Huawei"}, {"小米", "小米", "Xiaomi"}, {"苹果", "苹果", "Apple"}, {"联想", "联想", "Lenovo"},
         {"索尼", "索尼", "Sony"}, {"戴尔", "戴尔", "Dell"}, {"三星", "三星", "Samsung"}}},
       {"category", "品类", "category",
        {{"手机", "手机", "phone"}, {"笔记本", "笔记本", "laptop"}, {"平板", "平板", "tablet"},
         {"耳机", "耳机", "headphones"}, {"相机", "相机", "camera"}, {"手表", "手表", "smartwatch"}}},
       "status",
       {{"on_sale", "在售", "on sale"}, {"sold_out", "售罄", "sold out"}, {"discontinued", "已下架", "discontinued"}},
       "price", "价格", "price", "CNY", 199, 19999, 0,
       "stock_qty", "库存数量", "stock quantity", 0, 200,
       "listed_date", "上架日期", "listing date", "上架天数", "days since listing"},
      {"school", "a university's student records",
       "campuses", "campus_id", "校区", "campus", "campuses", "校区",
       "students", "student_no", "S", "学生", "students", "名",
       {"major", "专业", "major",
        {{"计算机", "计算机", "Computer Science"}, {"数学", "数学", "Mathematics"}, {"物理", "物理", "Physics"},
         {"经济", "经济", "Economics"}, {"法学", "法学", "Law"}, {"医学", "医学", "Medicine"}}},
       {"degree", "学历", "degree",
        {{"本科", "本科", "bachelor"}, {"硕士", "硕士", "master"}, {"博士", "博士", "doctoral"}}},
       "status",
       {{"enrolled", "在读", "enrolled"}, {"graduated", "已毕业", "graduated"}, {"suspended", "休学", "on leave"}},
       "gpa", "绩点", "GPA", "points", 2.0, 4.0, 2,
       "credits", "学分", "credits", 0, 160,
       "enroll_date", "入学日期", "enrolment date", "入学天数", "days since enrolment"},
      {"library", "a city library network's catalogue",
       "libraries", "library_id", "图书馆", "library", "libraries", "图书馆",
       "books", "book_id", "B", "图书", "books", "本",
       {"genre", "类别", "genre",
        {{"小说", "小说", "fiction"}, {"历史", "历史", "history"}, {"科学", "科学", "science"},
         {"艺术", "艺术", "art"}, {"儿童", "儿童", "children's"}, {"计算机", "计算机", "computing"}}},
       {"language", "语种", "language",
        {{"中文", "中文", "Chinese"}, {"英文", "英文", "English"}, {"日文", "日文", "Japanese"}}},
       "status",
       {{"available", "可借", "available"}, {"on_loan", "已借出", "on loan"}, {"lost", "遗失", "lost"}},
       "price", "定价", "list price", "CNY", 20, 300, 0,
       "pages", "页数", "pages", 50, 1200,
       "acquired_date", "入藏日期", "acquisition date", "入藏天数", "days since acquisition"},
      {"hospital", "a hospital group's appointment system",
       "hospitals", "hospital_id", "院区", "hospital campus", "hospital campuses", "院区",
       "appointments", "appointment_id", "A", "预约", "appointments", "次",
       {"department", "科室", "department",
        {{"内科", "内科", "internal medicine"}, {"外科", "外科", "surgery"}, {"儿科", "儿科", "pediatrics"},
         {"眼科", "眼科", "ophthalmology"}, {"口腔科", "口腔科", "dentistry"}, {"皮肤科", "皮肤科", "dermatology"}}},
       {"payment", "支付方式", "payment type",
        {{"医保", "医保", "public insurance"}, {"自费", "自费", "self-pay"}, {"商保", "商保", "private insurance"}}},
       "status",
       {{"completed", "已就诊", "completed"}, {"scheduled", "待就诊", "scheduled"}, {"cancelled", "已取消", "cancelled"}},
       "fee", "费用", "fee", "CNY", 20, 2000, 0,
       "patient_age", "患者年龄", "patient age", 1, 90,
       "visit_date", "就诊日期", "visit date", "距就诊天数", "days since the visit"},
      {"airline", "an airline's flight schedule",
       "airports", "airport_id", "机场", "airport", "airports", "机场",
       "flights", "flight_no", "F", "航班", "flights", "班",
       {"carrier", "航空公司", "carrier",
        {{"国航", "国航", "Air China"}, {"东航", "东航", "China Eastern"}, {"南航", "南航", "China Southern"},
         {"海航", "海航", "Hainan Airlines"}, {"川航", "川航", "Sichuan Airlines"}}},
       {"aircraft", "机型", "aircraft",
        {{"空客A320", "空客A320", "Airbus A320"}, {"波音737", "波音737", "Boeing 737"},
         {"空客A330", "空客A330", "Airbus A330"}, {"波音787", "波音787", "Boeing 787"}}},
       "status",
       {{"departed", "已起飞", "departed"}, {"delayed", "延误", "delayed"}, {"cancelled", "取消", "cancelled"},
        {"scheduled", "计划中", "scheduled"}},
       "fare", "票价", "fare", "CNY", 300, 5000, 0,
       "seats_left", "余座", "seats left", 0, 200,
       "departure_date", "起飞日期", "departure date", "距起飞天数", "days since departure"},
      {"hotel", "a hotel group's bookings",
       "hotels", "hotel_id", "酒店", "hotel", "hotels", "酒店",
       "bookings", "booking_id", "H", "订单", "bookings", "笔",
       {"room_type", "房型", "room type",
        {{"大床房", "大床房", "king room"}, {"双床房", "双床房", "twin room"}, {"套房", "套房", "suite"},
         {"家庭房", "家庭房", "family room"}}},
       {"channel", "渠道", "channel",
        {{"官网", "官网", "the website"}, {"携程", "携程", "Ctrip"}, {"美团", "美团", "Meituan"}, {"飞猪", "飞猪", "Fliggy"}}},
       "status",
       {{"confirmed", "已确认", "confirmed"}, {"checked_in", "已入住", "checked in"}, {"cancelled", "已取消", "cancelled"}},
       "rate", "房价", "room rate", "CNY", 200, 3000, 0,
       "nights", "入住晚数", "nights", 1, 14,
       "check_in_date", "入住日期", "check-in date", "入住天数", "days since check-in"},
  };
  return specs;
}

struct City {
  std::string name, region;
  std::vector<std::string> districts;
};

const std::vector<City>& cities() {
  static const std::vector<City> list = {
      {"北京", "华北", {"朝阳", "海淀"}}, {"天津", "华北", {"河西", "南开"}}, {"上海", "华东", {"浦东", "徐汇"}},
      {"杭州", "华东", {"西湖", "滨江"}}, {"南京", "华东", {"鼓楼", "江宁"}}, {"广州", "华南", {"天河", "越秀"}},
      {"深圳", "华南", {"南山", "福田"}}, {"成都", "西南", {"锦江", "高新"}}, {"重庆", "西南", {"渝中", "江北"}},
      {"武汉", "华中", {"武昌", "汉口"}}, {"西安", "西北", {"雁塔", "未央"}}, {"苏州", "华东", {"姑苏", "吴中"}},
      {"青岛", "华东", {"市南", "崂山"}}, {"济南", "华东", {"历下", "槐荫"}}, {"宁波", "华东", {"海曙", "鄞州"}},
      {"厦门", "华东", {"思明", "湖里"}}, {"福州", "华东", {"鼓楼", "仓山"}}, {"合肥", "华东", {"蜀山", "包河"}},
      {"长沙", "华中", {"岳麓", "天心"}}, {"郑州", "华中", {"金水", "二七"}}, {"南昌", "华中", {"东湖", "青山湖"}},
      {"沈阳", "东北", {"和平", "沈河"}}, {"大连", "东北", {"中山", "甘井子"}}, {"哈尔滨", "东北", {"南岗", "道里"}},
      {"长春", "东北", {"朝阳", "南关"}}, {"昆明", "西南", {"五华", "盘龙"}}, {"贵阳", "西南", {"云岩", "南明"}},
      {"南宁", "华南", {"青秀", "兴宁"}}, {"海口", "华南", {"龙华", "美兰"}}, {"东莞", "华南", {"南城", "东城"}},
      {"佛山", "华南", {"禅城", "南海"}}, {"兰州", "西北", {"城关", "七里河"}}, {"乌鲁木齐", "西北", {"天山", "水磨沟"}},
      {"石家庄", "华北", {"裕华", "桥西"}}, {"太原", "华北", {"小店", "迎泽"}}, {"呼和浩特", "华北", {"新城", "赛罕"}}};
  return list;
}

struct Family {
  std::string name;
  std::vector<std::string> zh, en;
  std::string sql;
};

// Written against the outline; see the file comment for the placeholders.
const std::vector<Family>& families() {
  static const std::vector<Family> list = {
      {"count_c1", {"{c1n}为{v1}的{e}有多少{mw}？", "{v1}的{e}一共有几{mw}？"},
       {"How many {es} have {c1n} {v1}?", "Count the {es} whose {c1n} is {v1}."},
       "SELECT COUNT(*) FROM {T} WHERE {C1} = {v1}"},
      {"count_c1_active", {"{a}的{v1}{e}有几{mw}？", "{c1n}是{v1}且{a}的{e}有多少？"},
       {"How many {v1} {es} are {a}?", "Count {es} with {c1n} {v1} that are {a}."},
       "SELECT COUNT(*) FROM {T} WHERE {C1} = {v1} AND {ST} = {a}"},
      {"count_status", {"{s}的{e}有多少{mw}？", "状态为{s}的{e}数量是多少？"},
       {"How many {es} are {s}?", "What is the number of {es} whose status is {s}?"},
       "SELECT COUNT(*) FROM {T} WHERE {ST} = {s}"},
      {"count_c1_c2", {"{c1n}为{v1}、{c2n}为{v2}的{e}有几{mw}？", "{v1}的{v2}{e}有多少？"},
       {"How many {es} have {c1n} {v1} and {c2n} {v2}?", "Count {v1} {es} with {c2n} {v2}."},
       "SELECT COUNT(*) FROM {T} WHERE {C1} = {v1} AND {C2} = {v2}"},
      {"count_city", {"{city}有多少{mw}{e}？", "统计{city}所有{site_e}的{e}数量"},
       {"How many {es} are there in {city}?", "Count the {es} at our {city} {sites}."},
       "SELECT COUNT(*) {J} WHERE s.city = {city}"},
      {"count_region_active", {"{region}地区{a}的{e}有多少？", "{region}区域{a}的{e}一共几{mw}？"},
       {"How many {es} in {region} are {a}?", "Count the {a} {es} in the {region} region."},
       "SELECT COUNT(*) {J} WHERE s.region = {region} AND m.{ST} = {a}"},
      {"count_site", {"{site}有多少{mw}{e}？", "统计{site}的{e}总数"},
       {"How many {es} does {site} have?", "Total number of {es} at {site}?"},
       "SELECT COUNT(*) {J} WHERE s.name = {site}"},
      {"list_ids_c1_c2", {"列出{c1n}为{v1}、{c2n}为{v2}的{e}编号", "{v1}的{v2}{e}有哪些？给出编号"},
       {"List the ids of {es} with {c1n} {v1} and {c2n} {v2}.", "Which {v1} {es} have {c2n} {v2}? Give their ids."},
       "SELECT {ID} FROM {T} WHERE {C1} = {v1} AND {C2} = {v2}"},
      {"list_site_c1_active", {"{site}{a}的{v1}{e}有哪些？", "列出{site}目前{a}的{v1}{e}"},
       {"Which {v1} {es} are {a} at {site}?", "List the {a} {v1} {es} at {site}."},
       "SELECT m.{ID}, m.{C2} {J} WHERE s.name = {site} AND m.{C1} = {v1} AND m.{ST} = {a}"},
      {"lookup_date", {"{id}的{dn}是哪天？", "查询{id}的{dn}"},
       {"What is the {dn} of {id}?", "On which date is the {dn} of {id}?"},
       "SELECT {D} FROM {T} WHERE {ID} = {id}"},
      {"lookup_measure", {"{id}的{mn}是多少？", "查一下{id}的{mn}"},
       {"What is the {mn} of {id}?", "Look up the {mn} for {id}."},
       "SELECT {M} FROM {T} WHERE {ID} = {id}"},
      {"lookup_date_measure", {"{id}的{dn}和{mn}分别是多少？"},
       {"Give me the {dn} and {mn} of {id}."},
       "SELECT {D}, {M} FROM {T} WHERE {ID} = {id}"},
      {"lookup_site", {"{id}在哪个{site_e}、哪个城市？"},
       {"Which {site_one} and city is {id} at?"},
       "SELECT s.name, s.city {J} WHERE m.{ID} = {id}"},
      {"lookup_age", {"{id}的{agen}是多少天？", "{id}从{dn}到现在多少天？"},
       {"How many {agen} for {id}?", "What are the {agen} of {id}?"},
       "SELECT CAST({AGE} AS INTEGER) FROM {T} WHERE {ID} = {id}"},
      {"lookup_status", {"{id}现在是什么状态？"}, {"What is the status of {id}?"},
       "SELECT {ST} FROM {T} WHERE {ID} = {id}"},
      {"count_since_month_c1_active", {"{month}以后{dn}的{v1}{e}还有几{mw}{a}？", "从{month}开始、{a}的{v1}{e}有多少？"},
       {"How many {v1} {es} with a {dn} since {month} are {a}?", "Of the {v1} {es} dated {month} or later, how many are {a}?"},
       "SELECT COUNT(*) FROM {T} WHERE {C1} = {v1} AND {ST} = {a} AND {D} >= {month_start}"},
      {"count_in_month", {"{month}的{e}有多少{mw}？（按{dn}）", "统计{dn}在{month}的{e}数量"},
       {"How many {es} have a {dn} in {month}?", "Count the {es} dated {month} by {dn}."},
       "SELECT COUNT(*) FROM {T} WHERE {D} >= {month_start} AND {D} < {month_end}"},
      {"list_between_c1", {"{dn}在{date_from}到{date_to}之间的{v1}{e}有哪些？"},
       {"Which {v1} {es} have a {dn} between {date_from} and {date_to}?"},
       "SELECT {ID}, {D} FROM {T} WHERE {C1} = {v1} AND {D} BETWEEN {date_from} AND {date_to}"},
      {"count_age_over_active", {"{agen}超过{days}天的{a}{e}有多少？", "有多少{a}的{e}{agen}在{days}天以上？"},
       {"How many {a} {es} have more than {days} {agen}?", "Count {a} {es} older than {days} days by {dn}."},
       "SELECT COUNT(*) FROM {T} WHERE {ST} = {a} AND {AGE} > {days}"},
      {"avg_age_c1_active", {"{a}的{v1}{e}平均{agen}是多少？"},
       {"What is the average number of {agen} of {a} {v1} {es}?"},
       "SELECT AVG({AGE}) FROM {T} WHERE {C1} = {v1} AND {ST} = {a}"},
      {"count_measure_below_active", {"{mn}低于{hi}的{a}{e}有多少？", "{a}的{e}里{mn}不到{hi}的有几{mw}？"},
       {"How many {a} {es} have a {mn} below {hi}?", "Count {a} {es} with {mn} under {hi}."},
       "SELECT COUNT(*) FROM {T} WHERE {ST} = {a} AND {M} < {hi}"},
      {"count_measure_between_c2", {"{mn}在{lo}到{hi}之间的{v2}{e}有几{mw}？"},
       {"How many {es} with {c2n} {v2} have a {mn} between {lo} and {hi}?"},
       "SELECT COUNT(*) FROM {T} WHERE {C2} = {v2} AND {M} BETWEEN {lo} AND {hi}"},
      {"list_measure_above_city_active", {"{city}{mn}超过{lo}的{a}{e}有哪些？"},
       {"Which {a} {es} in {city} have a {mn} above {lo}?"},
       "SELECT m.{ID}, m.{C1}, m.{M} {J} WHERE s.city = {city} AND m.{ST} = {a} AND m.{M} > {lo}"},
      {"avg_measure_c1", {"{v1}{e}的平均{mn}是多少？", "{c1n}为{v1}的{e}平均{mn}"},
       {"What is the average {mn} of {v1} {es}?", "Average {mn} of {es} with {c1n} {v1}?"},
       "SELECT AVG({M}) FROM {T} WHERE {C1} = {v1}"},
      {"avg_measure_city_c2_active", {"{city}{a}的{v2}{e}平均{mn}是多少？"},
       {"What is the average {mn} of {a} {es} with {c2n} {v2} in {city}?"},
       "SELECT AVG(m.{M}) {J} WHERE s.city = {city} AND m.{C2} = {v2} AND m.{ST} = {a}"},
      {"max_measure_c1", {"{v1}{e}里最高的{mn}是多少？"}, {"What is the highest {mn} among {v1} {es}?"},
       "SELECT MAX({M}) FROM {T} WHERE {C1} = {v1}"},
      {"min_measure_c2_active", {"{a}的{v2}{e}最低{mn}是多少？"}, {"What is the lowest {mn} of {a} {es} with {c2n} {v2}?"},
       "SELECT MIN({M}) FROM {T} WHERE {C2} = {v2} AND {ST} = {a}"},
      {"sum_measure_site_active", {"{site}{a}的{e}{mn}总额是多少？"}, {"What is the total {mn} of {a} {es} at {site}?"},
       "SELECT SUM(m.{M}) {J} WHERE s.name = {site} AND m.{ST} = {a}"},
      {"top_measure_city", {"{city}{mn}最高的{e}是哪个？"}, {"Which of the {es} in {city} has the highest {mn}?"},
       "SELECT m.{ID}, m.{C1}, m.{M} {J} WHERE s.city = {city} ORDER BY m.{M} DESC, m.{ID} LIMIT 1"},
      {"group_c1_count_status", {"各{c1n}{s}的{e}分别有多少？按数量从多到少排"},
       {"How many {s} {es} does each {c1n} have? Most first."},
       "SELECT {C1}, COUNT(*) AS n FROM {T} WHERE {ST} = {s} GROUP BY {C1} ORDER BY n DESC, {C1}"},
      {"topn_c1_active", {"{a}数量最多的前{n}个{c1n}是哪些？"}, {"Which {n} values of {c1n} have the most {a} {es}?"},
       "SELECT {C1}, COUNT(*) AS n FROM {T} WHERE {ST} = {a} GROUP BY {C1} ORDER BY n DESC, {C1} LIMIT {n}"},
      {"group_city_count_c2", {"每个城市各有多少{v2}{e}？按数量从多到少"}, {"How many {es} with {c2n} {v2} does each city have, most first?"},
       "SELECT s.city, COUNT(*) AS n {J} WHERE m.{C2} = {v2} GROUP BY s.city ORDER BY n DESC, s.city"},
      {"group_region_avg_measure_c1", {"各区域{v1}{e}的平均{mn}是多少？"}, {"What is the average {mn} of {v1} {es} in each region?"},
       "SELECT s.region, AVG(m.{M}) {J} WHERE m.{C1} = {v1} GROUP BY s.region"},
      {"group_c2_count_c1", {"{v1}{e}按{c2n}分别有几{mw}？"}, {"How many {v1} {es} are there per {c2n}?"},
       "SELECT {C2}, COUNT(*) FROM {T} WHERE {C1} = {v1} GROUP BY {C2}"},
      {"topn_sites_active", {"{a}的{e}最多的{n}个{site_e}是哪些？"}, {"Which {n} {sites} have the most {a} {es}?"},
       "SELECT s.name, COUNT(*) AS n {J} WHERE m.{ST} = {a} GROUP BY s.{K}, s.name ORDER BY n DESC, s.name LIMIT {n}"},
      {"topn_oldest_city_active", {"{city}{dn}最早的{n}个{a}{e}是哪些？"}, {"Which {n} {a} {es} in {city} have the earliest {dn}?"},
       "SELECT m.{ID}, m.{D} {J} WHERE s.city = {city} AND m.{ST} = {a} ORDER BY m.{D}, m.{ID} LIMIT {n}"},
      {"neg_city_not_c1", {"{city}{c1n}不是{v1}的{e}有多少？", "{city}除了{v1}以外还有多少{mw}{e}？"},
       {"How many {es} in {city} are not {v1}?", "Count {es} in {city} excluding {c1n} {v1}."},
       "SELECT COUNT(*) {J} WHERE s.city = {city} AND m.{C1} <> {v1}"},
      {"neg_c2_not_status", {"{v2}{e}中不是{s}的有几{mw}？"}, {"How many {es} with {c2n} {v2} are not {s}?"},
       "SELECT COUNT(*) FROM {T} WHERE {C2} = {v2} AND {ST} <> {s}"},
      {"neg_region_not_c2_active", {"{region}{a}的{e}中{c2n}不是{v2}的有多少？"},
       {"How many {a} {es} in {region} do not have {c2n} {v2}?"},
       "SELECT COUNT(*) {J} WHERE s.region = {region} AND m.{ST} = {a} AND m.{C2} <> {v2}"},
      {"combo_city_c1_c2_active", {"{city}{a}的{v1}{v2}{e}有几{mw}？"}, {"How many {a} {v1} {es} with {c2n} {v2} are in {city}?"},
       "SELECT COUNT(*) {J} WHERE s.city = {city} AND m.{C1} = {v1} AND m.{C2} = {v2} AND m.{ST} = {a}"},
      {"distinct_c2_for_c1", {"{v1}的{e}都有哪些{c2n}？"}, {"Which values of {c2n} do {v1} {es} have?"},
       "SELECT DISTINCT {C2} FROM {T} WHERE {C1} = {v1}"},
      {"count_sites_city", {"{city}有几个{site_e}？"}, {"How many {sites} are there in {city}?"},
       "SELECT COUNT(*) FROM {S} WHERE city = {city}"},
      {"list_sites_region", {"{region}有哪些{site_e}？"}, {"Which {sites} are in the {region} region?"},
       "SELECT name, city FROM {S} WHERE region = {region}"},
      {"count_count_over_c1", {"{qn}超过{q}的{v1}{e}有多少？"}, {"How many {v1} {es} have more than {q} {qn}?"},
       "SELECT COUNT(*) FROM {T} WHERE {C1} = {v1} AND {Q} > {q}"},
      {"sum_count_c2_active", {"{a}的{v2}{e}{qn}合计是多少？"}, {"What is the total {qn} of {a} {es} with {c2n} {v2}?"},
       "SELECT SUM({Q}) FROM {T} WHERE {C2} = {v2} AND {ST} = {a}"},
  };
  return list;
}

std::string enum_list(const std::vector<Term>& terms) {
  std::string out;
  for (size_t i = 0; i < terms.size(); ++i) out += (i ? "," : "") + sql_literal(terms[i].stored);
  return out;
}

std::string schema_sql(const SchemaSpec& s) {
  const auto values = [](const Category& c) {
    std::string out;
    for (const auto& v : c.values) out += (out.empty() ? "" : " ") + v.stored;
    return out;
  };
  return "CREATE TABLE " + s.site_table + "(" + s.site_key + " INTEGER PRIMARY KEY, name TEXT NOT NULL, " +
         "city TEXT NOT NULL, region TEXT NOT NULL);\n" +
         "CREATE TABLE " + s.table + "(" + s.id_column + " TEXT PRIMARY KEY,\n" +
         "         " + s.c1.column + " TEXT NOT NULL,            -- " + values(s.c1) + "\n" +
         "         " + s.c2.column + " TEXT NOT NULL,            -- " + values(s.c2) + "\n" +
         "         " + s.status_column + " TEXT NOT NULL CHECK (" + s.status_column + " IN (" + enum_list(s.statuses) +
         ")),\n" +
         "         " + s.measure + " REAL NOT NULL,             -- " + s.measure_unit + "\n" +
         "         " + s.count + " INTEGER NOT NULL,\n" +
         "         " + s.date + " TEXT NOT NULL,              -- 'YYYY-MM-DD'\n" +
         "         " + s.site_key + " INTEGER NOT NULL REFERENCES " + s.site_table + "(" + s.site_key + "));\n" +
         "CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);   -- holds 'as_of_date'\n";
}

std::string conventions(const SchemaSpec& s) {
  const Term& v1 = s.c1.values[0];
  std::string statuses;
  for (size_t i = 0; i < s.statuses.size(); ++i)
    statuses += (i ? ", " : "") + sql_literal(s.statuses[i].stored);
  return s.c1.column + ", " + s.c2.column + ", city, region and " + s.site_table +
         " names are stored in Chinese (e.g. " + v1.stored + ", " + s.c2.values[0].stored + ", 北京, 华北), also when "
         "the question names them in English (" + v1.en + " → " + sql_literal(v1.stored) + "). " + s.status_column +
         " is one of " + statuses + ". Dates are 'YYYY-MM-DD' text. " + s.age_en + " count from " + s.date +
         " to meta.as_of_date: julianday((SELECT value FROM meta WHERE key = 'as_of_date')) - julianday(" + s.date + ").";
}

SqlPlanNames plan_names(const SchemaSpec& s) {
  SqlPlanNames n;
  n.tables = {s.table, s.site_table, "meta"};
  n.columns = {s.id_column, s.c1.column, s.c2.column, s.status_column, s.measure, s.count, s.date,
               s.site_key, "name", "city", "region"};
  n.age_zh = s.age_zh + "用 meta.as_of_date 减 " + s.date + " 计算";
  n.age_en = s.age_en + " = meta.as_of_date - " + s.date;
  return n;
}

struct Site {
  int64_t id;
  std::string name, city, region;
};

struct Entity {
  std::string id;
  const Term *v1, *v2, *status;
  double measure;
  int64_t count;
  std::string date;
  const Site* site;
};

std::string format_number(double v, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

// Draws the sites and entities of one schema and writes them to `path`.
void write_schema_database(const SchemaSpec& s, const std::vector<Site>& sites, const std::vector<Entity>& rows,
                           const std::string& as_of_date, const std::string& path) {
  std::string script = "BEGIN;\n" + schema_sql(s);
  for (const Site& site : sites)
    script += "INSERT INTO " + s.site_table + " VALUES (" + std::to_string(site.id) + ", " + sql_literal(site.name) + ", " +
              sql_literal(site.city) + ", " + sql_literal(site.region) + ");\n";
  for (const Entity& e : rows)
    script += "INSERT INTO " + s.table + " VALUES (" + sql_literal(e.id) + ", " + sql_literal(e.v1->stored) + ", " +
              sql_literal(e.v2->stored) + ", " + sql_literal(e.status->stored) + ", " +
              format_number(e.measure, s.measure_decimals) + ", " + std::to_string(e.count) + ", " + sql_literal(e.date) +
              ", " + std::to_string(e.site->id) + ");\n";
  script += "INSERT INTO meta VALUES ('as_of_date', " + sql_literal(as_of_date) + ");\nCOMMIT;\n";
  write_file_atomic_with(path, [&](const std::string& tmp) {
    sqlite3* db = nullptr;
    if (sqlite3_open_v2(tmp.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr) != SQLITE_OK) {
      const std::string why = db ? sqlite3_errmsg(db) : "out of memory";
      sqlite3_close(db);
      fail("cannot create database " + path + ": " + why);
    }
    char* err = nullptr;
    const int rc = sqlite3_exec(db, script.c_str(), nullptr, nullptr, &err);
    const std::string why = err ? err : "";
    sqlite3_free(err);
    sqlite3_close(db);
    if (rc != SQLITE_OK) fail("cannot write database " + path + ": " + why);
  });
}

// Question text (zh, en) and SQL text for every placeholder, from one entity row.
QuestionSlots draw_slots(const SchemaSpec& s, const Entity& e, const std::vector<Entity>& rows, int64_t as_of_days,
                         Rng& rng) {
  QuestionSlots slots;
  const auto noun = [&](const std::string& key, const std::string& zh, const std::string& en) { slots.set(key, zh, en, ""); };
  noun("e", s.entity_zh, s.entity_zh);
  noun("es", s.entities_en, s.entities_en);
  noun("mw", s.measure_word, s.measure_word);
  noun("site_e", s.site_zh, s.site_zh);
  noun("sites", s.sites_en, s.sites_en);
  noun("site_one", s.site_en, s.site_en);
  noun("c1n", s.c1.zh_noun, s.c1.en_noun);
  noun("c2n", s.c2.zh_noun, s.c2.en_noun);
  noun("mn", s.measure_zh, s.measure_en);
  noun("qn", s.count_zh, s.count_en);
  noun("dn", s.date_zh, s.date_en);
  noun("agen", s.age_zh, s.age_en);
  auto& sql = slots.sql;
  sql["T"] = s.table;
  sql["S"] = s.site_table;
  sql["K"] = s.site_key;
  sql["ID"] = s.id_column;
  sql["C1"] = s.c1.column;
  sql["C2"] = s.c2.column;
  sql["ST"] = s.status_column;
  sql["M"] = s.measure;
  sql["Q"] = s.count;
  sql["D"] = s.date;
  sql["J"] = "FROM " + s.table + " m JOIN " + s.site_table + " s ON m." + s.site_key + " = s." + s.site_key;
  sql["AGE"] = "julianday((SELECT value FROM meta WHERE key = 'as_of_date')) - julianday(" + s.date + ")";
  slots.set("v1", e.v1->zh, e.v1->en, sql_literal(e.v1->stored));
  slots.set("v2", e.v2->zh, e.v2->en, sql_literal(e.v2->stored));
  // {s}: any status (a second row's, so every status gets asked about); {a}: the active one.
  const Term* other = rows[rng.below(rows.size())].status;
  slots.set("s", other->zh, other->en, sql_literal(other->stored));
  slots.set("a", s.statuses[0].zh, s.statuses[0].en, sql_literal(s.statuses[0].stored));
  slots.set("site", e.site->name, e.site->name, sql_literal(e.site->name));
  slots.set("city", e.site->city, english_term(e.site->city), sql_literal(e.site->city));
  slots.set("region", e.site->region, english_term(e.site->region), sql_literal(e.site->region));
  slots.set("id", e.id, e.id, sql_literal(e.id));

  slots.set_dates(e.date, as_of_days, rng);
  const int64_t day = date_to_days(e.date);
  const int64_t age = as_of_days - day;
  std::vector<int> thresholds;
  for (int d : {7, 15, 30, 60, 90, 180, 270})
    if (d < age) thresholds.push_back(d);
  const int days = thresholds.empty() ? 7 : thresholds[rng.below(thresholds.size())];
  slots.set("days", std::to_string(days), std::to_string(days), std::to_string(days));

  // Measure bounds on a grid of about a tenth of the range around this row's value.
  const double span = s.measure_hi - s.measure_lo;
  const double step = s.measure_decimals > 0 ? 0.5 : std::pow(10.0, std::floor(std::log10(span / 10)));
  const double lo = std::floor(e.measure / step) * step;
  const std::string lo_text = format_number(lo, s.measure_decimals > 0 ? 1 : 0);
  const std::string hi_text = format_number(lo + step, s.measure_decimals > 0 ? 1 : 0);
  slots.set("lo", lo_text, lo_text, lo_text);
  slots.set("hi", hi_text, hi_text, hi_text);
  const int64_t q = std::max<int64_t>(s.count_lo, e.count - 1 - static_cast<int64_t>(rng.below(10)));
  slots.set("q", std::to_string(q), std::to_string(q), std::to_string(q));
  static const int kTopN[] = {3, 5};
  const int n = kTopN[rng.below(2)];
  slots.set("n", std::to_string(n), std::to_string(n), std::to_string(n));
  return slots;
}

}  // namespace

const std::vector<std::string>& corpus_schema_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> out;
    for (const auto& s : schema_specs()) out.push_back(s.name);
    return out;
  }();
  return names;
}

SqlCorpus generate_sql_corpus(const CorpusOptions& options, const std::string& db_dir) {
  if (options.examples < 1) fail("corpus: examples must be at least 1");
  if (options.entities_per_schema < 10) fail("corpus: entities_per_schema must be at least 10");
  if (!is_valid_date(options.as_of_date)) fail("corpus: as_of_date must be a YYYY-MM-DD date (got '" + options.as_of_date + "')");
  std::vector<const SchemaSpec*> chosen;
  for (const auto& name : options.schemas.empty() ? corpus_schema_names() : options.schemas) {
    auto it = std::find_if(schema_specs().begin(), schema_specs().end(), [&](const SchemaSpec& s) { return s.name == name; });
    if (it == schema_specs().end()) {
      std::string valid;
      for (const auto& n : corpus_schema_names()) valid += (valid.empty() ? "" : ", ") + n;
      fail("corpus: unknown schema '" + name + "' (valid: " + valid + ")");
    }
    chosen.push_back(&*it);
  }
  std::error_code ec;
  fs::create_directories(db_dir, ec);
  if (ec) fail("cannot create " + db_dir + ": " + ec.message());

  SqlCorpus corpus;
  const int64_t as_of_days = date_to_days(options.as_of_date);
  for (size_t k = 0; k < chosen.size(); ++k) {
    const SchemaSpec& s = *chosen[k];
    Rng rng(options.seed ^ stable_hash("corpus." + s.name));
    std::vector<Site> sites;
    for (const City& c : cities())
      for (const auto& d : c.districts)
        sites.push_back({static_cast<int64_t>(sites.size() + 1), c.name + d + s.site_suffix, c.name, c.region});
    std::vector<Entity> rows;
    std::set<std::string> ids;
    while (static_cast<int>(rows.size()) < options.entities_per_schema) {
      char id[32];
      std::snprintf(id, sizeof id, "%s%06d", s.id_prefix.c_str(), static_cast<int>(rng.below(1000000)));
      if (!ids.insert(id).second) continue;
      Entity e;
      e.id = id;
      e.v1 = &s.c1.values[rng.below(s.c1.values.size())];
      e.v2 = &s.c2.values[rng.below(s.c2.values.size())];
      // The active status is the most common, as in stock data.
      e.status = rng.unit() < 0.5 ? &s.statuses[0] : &s.statuses[rng.below(s.statuses.size())];
      const double unit = std::pow(10.0, -s.measure_decimals);
      e.measure = std::round((s.measure_lo + rng.unit() * (s.measure_hi - s.measure_lo)) / unit) * unit;
      e.count = rng.between(s.count_lo, s.count_hi);
      e.date = days_to_date(as_of_days - rng.between(1, 365));
      e.site = &sites[rng.below(sites.size())];
      rows.push_back(e);
    }
    CorpusSchemaInfo info;
    info.name = s.name;
    info.schema_sql = schema_sql(s);
    info.system_prompt = sql_system_prompt(s.subject, info.schema_sql, conventions(s));
    info.plan_names = plan_names(s);
    info.database = db_dir + "/" + s.name + ".sqlite";
    write_schema_database(s, sites, rows, options.as_of_date, info.database);

    // This schema's share of the examples, spread over the families and both languages.
    const int64_t share = options.examples / static_cast<int64_t>(chosen.size()) +
                          (static_cast<int64_t>(k) < options.examples % static_cast<int64_t>(chosen.size()) ? 1 : 0);
    const int64_t per_family = (share + static_cast<int64_t>(families().size()) - 1) / static_cast<int64_t>(families().size());
    std::vector<Example> drafts;
    for (const Family& f : families()) {
      Rng family_rng(options.seed ^ stable_hash(s.name + "." + f.name));
      std::set<std::string> seen;
      // A few extra drafts per family cover those label drops; an even number keeps zh and en equal.
      const int64_t wanted = 2 * ((per_family + 3) / 2);
      for (int64_t attempt = 0, made = 0; attempt < wanted * 10 && made < wanted; ++attempt) {
        const bool zh = made % 2 == 0;
        const QuestionSlots slots = draw_slots(s, rows[family_rng.below(rows.size())], rows, as_of_days, family_rng);
        const auto& texts = zh ? f.zh : f.en;
        const std::string question = fill_template(texts[family_rng.below(texts.size())], zh ? slots.zh : slots.en);
        if (!seen.insert(question).second) continue;
        char id[48];
        std::snprintf(id, sizeof id, "-%s-%04d", zh ? "zh" : "en", static_cast<int>(made));
        drafts.push_back({s.name + "." + f.name + id, s.name + "." + f.name, zh ? "zh" : "en", question,
                          fill_template(f.sql, slots.sql), nullptr, /*source=*/""});
        ++made;
      }
    }
    const SqlDatabase db(info.database);
    LabelOptions label;
    label.max_result_rows = 50;
    LabelReport labelled = label_examples(db, drafts, label);
    for (const auto& [reason, n] : labelled.dropped) corpus.dropped[reason] += n;
    // Round-robin over the families (in a seeded order, each family's drafts shuffled) so every
    // family keeps its share when drafts were dropped, and a share smaller than the number of
    // families still mixes families and languages.
    std::map<std::string, std::vector<Example>> by_family;
    for (auto& e : labelled.kept) by_family[e.family].push_back(std::move(e));
    std::vector<std::string> family_order;
    for (const Family& f : families()) {
      family_order.push_back(s.name + "." + f.name);
      rng.shuffle(by_family[family_order.back()]);
    }
    rng.shuffle(family_order);
    std::vector<CorpusExample> kept;
    for (size_t round = 0; static_cast<int64_t>(kept.size()) < share; ++round) {
      bool any = false;
      for (const auto& family : family_order) {
        const auto& list = by_family[family];
        if (round < list.size() && static_cast<int64_t>(kept.size()) < share) {
          kept.push_back({s.name, list[round]});
          any = true;
        }
      }
      if (!any) break;
    }
    corpus.examples.insert(corpus.examples.end(), kept.begin(), kept.end());
    corpus.schemas.push_back(std::move(info));
  }
  // One stream, shuffled once: pretraining batches mix schemas and families.
  Rng order(options.seed ^ stable_hash("corpus.order"));
  order.shuffle(corpus.examples);
  log::info("corpus: " + std::to_string(corpus.examples.size()) + " examples over " + std::to_string(corpus.schemas.size()) +
            " schemas and " + std::to_string(families().size()) + " families");
  return corpus;
}

nlohmann::json corpus_chat_row(const CorpusSchemaInfo& schema, const Example& example) {
  const std::string answer =
      format_answer(describe_sql_plan(example.sql, example.language, schema.plan_names), example.sql);
  return {{"messages",
           {{{"role", "system"}, {"content", schema.system_prompt}},
            {{"role", "user"}, {"content", example.question}},
            {{"role", "assistant"}, {"content", answer}}}},
          {"schema", schema.name},
          {"family", example.family},
          {"language", example.language},
          {"id", example.id}};
}

void write_corpus_jsonl(const std::string& path, const SqlCorpus& corpus, const std::vector<nlohmann::json>& extra) {
  std::map<std::string, const CorpusSchemaInfo*> schemas;
  for (const auto& s : corpus.schemas) schemas[s.name] = &s;
  std::string out;
  for (const auto& e : corpus.examples) out += to_json_line(corpus_chat_row(*schemas.at(e.schema), e.example));
  for (const auto& row : extra) out += to_json_line(row);
  write_file_atomic(path, out);
}

std::vector<nlohmann::json> glossary_rows() {
  std::vector<std::string> words;
  for (const auto& b : inventory_brands()) {
    words.push_back(b.name);
    for (const auto& m : b.models) words.push_back(m.name);
  }
  for (const auto& c : inventory_colors()) words.push_back(c);
  std::set<std::string> places;
  for (const auto& s : inventory_stores()) places.insert(s.city), places.insert(s.region);
  for (const City& c : cities()) places.insert(c.name), places.insert(c.region);
  words.insert(words.end(), places.begin(), places.end());
  std::vector<nlohmann::json> rows;
  std::set<std::string> seen;
  for (const auto& zh : words) {
    const std::string en = english_term(zh);
    if (en == zh || !seen.insert(zh).second) continue;
    const auto row = [&](const std::string& language, const std::string& question, const std::string& answer) {
      rows.push_back({{"messages", {{{"role", "user"}, {"content", question}}, {{"role", "assistant"}, {"content", answer}}}},
                      {"family", "glossary"},
                      {"language", language},
                      {"id", "glossary-" + language + "-" + std::to_string(rows.size())}});
    };
    row("zh", "“" + zh + "”的英文是什么？", en);
    row("en", "What is " + en + " in Chinese?", zh);
  }
  return rows;
}

}  // namespace lathe::data
