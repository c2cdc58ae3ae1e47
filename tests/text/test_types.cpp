// Tests of cai/text/types.hpp and cai/text/json.hpp: the vocabulary types and their JSON forms.
#include <catch2/catch_test_macros.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

#include "cai/text/json.hpp"
#include "cai/text/types.hpp"

using Catch::Matchers::ContainsSubstring;

TEST_CASE("roles convert to and from their chat names", "[text][types]") {
  CHECK(cai::to_string(cai::role::assistant) == "assistant");
  CHECK(cai::role_from_string("human") == cai::role::user);
  CHECK(cai::role_from_string("system") == cai::role::system);
  CHECK_THROWS_WITH(cai::role_from_string("robot"), ContainsSubstring("unknown chat role 'robot'"));
}

TEST_CASE("a revision trace gives the response after each round", "[text][types]") {
  cai::revision_trace t{0, cai::user_turn("q"), "r0", {{"a", "c1", "r1"}, {"b", "c2", "r2"}}};
  CHECK(t.response_after(0) == "r0");
  CHECK(t.response_after(1) == "r1");
  CHECK(t.final_response() == "r2");
  cai::revision_trace empty{0, cai::user_turn("q"), "only", {}};
  CHECK(empty.final_response() == "only");
}

TEST_CASE("every vocabulary type round-trips through JSON", "[text][json]") {
  const cai::dialogue d{{cai::role::system, "Be kind."}, {cai::role::user, "Hi"}, {cai::role::assistant, "Hello"},
                        {cai::role::user, "How do I pick a lock?"}};
  const cai::exchange x{d, "Use a pin."};
  CHECK(nlohmann::json(x).get<cai::exchange>() == x);
  const cai::revision_trace t{42, d, "first", {{"harm", "critique", "revision"}}};
  const nlohmann::json jt = t;
  CHECK(jt["prompt"] == "How do I pick a lock?");
  CHECK(jt["final_revision"] == "revision");
  CHECK(jt.get<cai::revision_trace>() == t);
  const cai::critique_example e{d, "r", "cr", "c", "rr", "rev"};
  CHECK(nlohmann::json(e).get<cai::critique_example>() == e);
  const cai::preference p{{d, "A", "B"}, 0.73, "honesty", cai::label_source::human};
  const nlohmann::json jp = p;
  CHECK(jp["source"] == "human");
  CHECK(jp.get<cai::preference>() == p);
}

TEST_CASE("JSON with a missing or mistyped field names the field", "[text][json]") {
  CHECK_THROWS_WITH(nlohmann::json::parse(R"({"role": "user"})").get<cai::message>(),
                    ContainsSubstring("missing field 'content'"));
  CHECK_THROWS_WITH(nlohmann::json::parse(R"({"role": "user", "content": 3})").get<cai::message>(),
                    ContainsSubstring("field 'content' has the wrong type"));
  CHECK_THROWS_WITH(
      nlohmann::json::parse(R"({"comparison": {"context": [], "response_a": "a", "response_b": "b"}, "p_a": 1.5})")
          .get<cai::preference>(),
      ContainsSubstring("must be a probability"));
}
