// Tests of cai/data/jsonl.hpp and cai/data/gzip.hpp: reading with line numbers, durable appending,
// recovery of a truncated tail, and gzip text.
#include <catch2/catch_test_macros.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "cai/data/gzip.hpp"
#include "cai/data/jsonl.hpp"

using Catch::Matchers::ContainsSubstring;

namespace {
std::filesystem::path temp_file(const std::string& name, const std::string& content) {
  auto dir = std::filesystem::temp_directory_path() / "cai-test-jsonl";
  std::filesystem::create_directories(dir);
  auto p = dir / name;
  std::ofstream(p, std::ios::binary) << content;
  return p;
}
}  // namespace

TEST_CASE("for_each_jsonl reads records with their line numbers and skips blank lines", "[data][jsonl]") {
  auto p = temp_file("ok.jsonl", "{\"a\": 1}\n\n{\"a\": 2}\n");
  std::vector<std::pair<int, std::size_t>> seen;
  cai::for_each_jsonl(p, [&](const nlohmann::json& j, std::size_t line) { seen.emplace_back(j["a"].get<int>(), line); });
  CHECK(seen == std::vector<std::pair<int, std::size_t>>{{1, 1}, {2, 3}});
}

TEST_CASE("a malformed JSONL line is reported with file line and column", "[data][jsonl]") {
  auto p = temp_file("bad.jsonl", "{\"a\": 1}\n{\"a\": 2,, }\n");
  try {
    cai::for_each_jsonl(p, [](const nlohmann::json&, std::size_t) {});
    FAIL("no error");
  } catch (const cai::parse_error& e) {
    CHECK(e.line() == 2);
    CHECK(e.column() == 9);
    CHECK_THAT(std::string(e.what()), ContainsSubstring("bad.jsonl:2:9: invalid JSON"));
  }
  CHECK_THROWS_AS(cai::for_each_jsonl("/nonexistent/cai.jsonl", [](const nlohmann::json&, std::size_t) {}),
                  cai::io_error);
}

TEST_CASE("jsonl_writer appends one flushed line per record", "[data][jsonl]") {
  auto p = temp_file("w.jsonl", "");
  {
    cai::jsonl_writer w(p);
    w.write({{"x", 1}});
    w.write({{"x", "two\nlines"}});
  }
  std::ifstream in(p);
  std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  CHECK(all == "{\"x\":1}\n{\"x\":\"two\\nlines\"}\n");
}

TEST_CASE("recover_jsonl keeps complete lines and cuts a partial last line", "[data][jsonl]") {
  auto p = temp_file("r.jsonl", "{\"x\":1}\n{\"x\":2}\n{\"x\":3");
  std::vector<int> kept;
  auto r = cai::recover_jsonl(p, [&](const nlohmann::json& j, std::size_t) { kept.push_back(j["x"].get<int>()); });
  CHECK(kept == std::vector<int>{1, 2});
  CHECK(r.records == 2);
  CHECK(r.truncated_tail);
  CHECK(std::filesystem::file_size(p) == std::string("{\"x\":1}\n{\"x\":2}\n").size());
  // A damaged line that is not the last one is an error, and the file is left as it was.
  auto q = temp_file("r2.jsonl", "{\"x\":1}\n{\"x\"\n{\"x\":3}\n");
  const auto size = std::filesystem::file_size(q);
  CHECK_THROWS_AS(cai::recover_jsonl(q, [](const nlohmann::json&, std::size_t) {}), cai::parse_error);
  CHECK(std::filesystem::file_size(q) == size);
  // A missing file is an empty result.
  CHECK(cai::recover_jsonl("/nonexistent/x.jsonl", [](const nlohmann::json&, std::size_t) {}).records == 0);
}

TEST_CASE("gzip text is read line by line and plain text passes through", "[data][gzip]") {
  const std::string shared = CAI_SHARED_DATA_DIR;
  const auto hh = std::filesystem::path(shared) / "hh-rlhf" / "harmless-base-test.jsonl.gz";
  if (!std::filesystem::exists(hh)) SKIP("shared data not present");
  std::size_t lines = 0;
  cai::for_each_gzip_line(hh, [&](std::string_view line, std::size_t) {
    if (!line.empty()) ++lines;
    if (lines == 1) CHECK(nlohmann::json::parse(line).contains("chosen"));
  });
  CHECK(lines == 2312);
  auto plain = temp_file("plain.txt", "a\nb\n");
  CHECK(cai::read_gzip_text(plain) == "a\nb\n");
  auto damaged = temp_file("damaged.gz", std::string("\x1f\x8b\x08\x00garbage", 12));
  CHECK_THROWS_AS(cai::read_gzip_text(damaged), cai::io_error);
}
