// Tests of cai/world/principles.hpp and cai/world/constitution.hpp: a principle's text is composed from the
// wordings of what it asks for, and what it asks decides revisions (harm alone refuses, helpfulness alone
// complies, both are harmless and helpful, the control changes nothing the oracle sees) and preferences;
// the world constitutions are valid and ask for what their names say.
#include <catch2/catch_test_macros.hpp>

#include <cstddef>
#include <set>
#include <string>
#include <vector>

#include "cai/constitution/validate.hpp"
#include "cai/world/constitution.hpp"
#include "cai/world/corpus.hpp"
#include "cai/world/oracle.hpp"

namespace w = cai::world;
using enum w::intent;
using w::response_style;

namespace {

/// Every request of the training side, one per (kind, task, topic) in phrasing 0 (or 1 where 0 is the pipeline's).
std::vector<w::request> sample_requests(const w::assistant_world& world, std::size_t n = 120) {
  auto out = world.generate_requests(w::split::train, n / 2, 3);
  const auto more = world.generate_requests(w::split::eval, n / 2, 4);
  out.insert(out.end(), more.begin(), more.end());
  return out;
}

w::response_form form(response_style s, bool remark = false, bool caveat = false, w::aside_kind aside = w::aside_kind::none) {
  return {s, remark, caveat, aside};
}

}  // namespace

TEST_CASE("A principle's requests are composed from the wordings of its intents", "[world][principles]") {
  const auto p = w::make_spec("x", {avoid_harm, helpful}, 0, 0).principle();
  CHECK(p.critique_request ==
        "Point out anything harmful in the response and ways the response fails to do what the person asked.");
  CHECK(p.revision_request == "Rewrite the response to remove anything harmful and do exactly what the person asked.");
  CHECK(p.comparison_question == "Which response is less harmful and does more of what was asked?");
  CHECK(p.tags == std::vector<std::string>{"avoid_harm", "helpful"});
  const auto q = w::make_spec("y", {avoid_harm, explain, respect}, 1, 2).principle();
  CHECK(q.comparison_question ==
        "Which answer is safer, gives a reason and an alternative when it declines and is more polite?");
  CHECK_THROWS_AS(w::principle_spec{}.principle(), cai::config_error);
  w::principle_spec bad = w::make_spec("z", {helpful}, 0, 0);
  bad.wording[static_cast<std::size_t>(helpful)] = 9;
  CHECK_THROWS_AS(bad.principle(), cai::config_error);
}

TEST_CASE("Harm alone revises harmful and borderline answers to bare refusals and leaves benign answers",
          "[world][principles][revise]") {
  const w::assistant_world world;
  const w::intents harm{avoid_harm};
  CHECK(harm.cautious());
  for (const auto& r : sample_requests(world)) {
    for (const auto s : {response_style::harmful_compliance, response_style::helpful, response_style::harmless_helpful}) {
      const w::response_form f = w::revise(world, r, form(s), harm);
      if (r.kind == w::request_kind::benign) CHECK(f.content == s);
      else CHECK(f.content == response_style::evasive_refusal);
    }
  }
}

TEST_CASE("Helpfulness alone revises toward doing what was asked, harmful details included", "[world][principles][revise]") {
  const w::assistant_world world;
  const w::oracle oracle(world);
  for (const auto& r : sample_requests(world)) {
    for (const auto s : w::all_styles) {
      const w::response_form f = w::revise(world, r, w::form_of(s), {helpful});
      CHECK(f.content == response_style::harmful_compliance);
      const w::labels l = oracle.judge(r, world.render(r, f, 1));
      CHECK(l.harmful == (r.kind != w::request_kind::benign));
      CHECK_FALSE(l.evasive);
    }
  }
}

TEST_CASE("Harm with helpfulness or explanation revises toward harmless and helpful", "[world][principles][revise]") {
  const w::assistant_world world;
  const w::oracle oracle(world);
  for (const w::intents s : {w::intents{avoid_harm, helpful}, w::intents{avoid_harm, explain}, w::intents{avoid_harm, helpful, explain}}) {
    CHECK_FALSE(s.cautious());
    for (const auto& r : sample_requests(world)) {
      for (const auto style : w::all_styles) {
        const w::response_form f = w::revise(world, r, w::form_of(style), s);
        const w::labels l = oracle.judge(r, world.render(r, f, 2));
        INFO(r.text << " / " << w::to_string(style) << " under " << w::to_string(s));
        CHECK_FALSE(l.harmful);
        CHECK(l.helpful);
        CHECK_FALSE(l.evasive);
      }
    }
  }
}

TEST_CASE("Explanation alone turns bare refusals into explained ones and leaves answers", "[world][principles][revise]") {
  const w::assistant_world world;
  for (const auto& r : sample_requests(world)) {
    CHECK(w::revise(world, r, form(response_style::evasive_refusal), {explain}).content == response_style::harmless_helpful);
    CHECK(w::revise(world, r, form(response_style::harmful_compliance), {explain}).content == response_style::harmful_compliance);
  }
}

TEST_CASE("Respect, caveats and the control change only their own part of a response", "[world][principles][revise]") {
  const w::assistant_world world;
  const w::oracle oracle(world);
  std::size_t caveats_added = 0;
  for (const auto& r : sample_requests(world)) {
    for (const auto style : w::all_styles) {
      for (const bool remark : {false, true}) {
        for (const bool with_caveat : {false, true}) {
          if (with_caveat && style == response_style::evasive_refusal) continue;  // a bare refusal has no caveat
          const w::response_form f0 = form(style == response_style::condescending ? response_style::harmless_helpful : style,
                                           remark || style == response_style::condescending, with_caveat);
          const w::labels before = oracle.judge(r, world.render(r, f0, 5));
          const w::response_form respectful = w::revise(world, r, f0, {respect});
          CHECK_FALSE(respectful.remark);
          CHECK(respectful.content == f0.content);
          CHECK(respectful.caveat == f0.caveat);
          const w::response_form c = w::revise(world, r, f0, {w::intent::caveat});
          CHECK(c.content == f0.content);
          CHECK(c.caveat == world.caveat_belongs(r, f0.content));
          caveats_added += c.caveat && !f0.caveat ? 1 : 0;
          for (const w::intents control : {w::intents{colour}, w::intents{weather}}) {
            const w::response_form x = w::revise(world, r, f0, control);
            const std::string text = world.render(r, x, 5);
            CHECK(oracle.judge(r, text) == before);  // nothing the oracle sees changes
            CHECK(oracle.aside(text) == (control.has(colour) ? w::aside_kind::colour : w::aside_kind::weather));
          }
        }
      }
    }
  }
  CHECK(caveats_added > 0);
}

TEST_CASE("Preferences follow what the principle asks, and ties are nothing", "[world][principles][preference]") {
  const w::assistant_world world;
  const w::oracle oracle(world);
  std::size_t benign = 0;
  for (const auto& r : sample_requests(world)) {
    const auto text = [&](w::response_form f) { return world.render(r, f, 7); };
    const std::string refusal = text(form(response_style::evasive_refusal));
    const std::string comply = text(form(response_style::harmful_compliance));
    const std::string good = text(form(response_style::harmless_helpful));
    // harm alone prefers the bare refusal even to a harmless answer (the Goodhart failure)
    CHECK(w::expected_preference(oracle, r, refusal, good, {avoid_harm}) == 'A');
    CHECK(w::expected_preference(oracle, r, good, refusal, {avoid_harm, helpful}) == 'A');
    if (r.kind == w::request_kind::harmful) {
      CHECK(w::expected_preference(oracle, r, comply, good, {helpful}) == 'A');
      CHECK(w::expected_preference(oracle, r, comply, good, {avoid_harm}) == 'B');
    }
    if (r.kind == w::request_kind::benign) {
      ++benign;
      CHECK(w::expected_preference(oracle, r, comply, refusal, {helpful}) == 'A');
    }
    // the control cannot tell apart responses without its aside
    CHECK_FALSE(w::expected_preference(oracle, r, comply, refusal, {colour}).has_value());
    CHECK(w::expected_preference(oracle, r, comply, text(form(response_style::evasive_refusal, false, false, w::aside_kind::colour)),
                                 {colour}) == 'B');
  }
  CHECK(benign > 10);
}

TEST_CASE("The world constitutions are valid and ask what their names say", "[world][constitution]") {
  std::vector<w::world_constitution_spec> all = w::comparison_constitutions();
  all.insert(all.begin(), w::world_constitution_spec_default());
  std::set<std::string> names;
  for (const auto& spec : all) {
    INFO(spec.name);
    names.insert(spec.name);
    const cai::constitution c = spec.constitution();
    CHECK_NOTHROW(cai::validate_constitution(c));
    CHECK(c.principles.size() >= 4);
    for (const auto& p : spec.principles) {
      CHECK(spec.find(p.name) == &p);
      if (spec.name == "harm-only") CHECK(p.asks == w::intents{avoid_harm});
      if (spec.name == "helpful-only") CHECK(p.asks == w::intents{helpful});
      if (spec.name == "control") CHECK(p.asks.is_control());
      if (spec.name == "world") {
        CHECK(p.asks.has(avoid_harm));
        CHECK_FALSE(p.asks.cautious());
      }
      if (spec.name == "held-out-wording") {
        // every wording held out, or a combination the corpus never asks for
        bool held_out_combination = false;
        for (const auto& h : w::heldout_intent_sets()) held_out_combination = held_out_combination || h == p.asks;
        bool held_out_wordings = true;
        for (const auto i : w::all_intents)
          if (p.asks.has(i)) held_out_wordings = held_out_wordings && p.wording[static_cast<std::size_t>(i)] >= w::corpus_wording_count;
        CHECK((held_out_combination || held_out_wordings));
      }
    }
  }
  CHECK(names.size() == 6);
  CHECK(w::find_world_constitution("harm-only").has_value());
  CHECK_FALSE(w::find_world_constitution("no-such").has_value());
  CHECK(w::world_constitution() == w::world_constitution_spec_default().constitution());
}

TEST_CASE("No held-out combination is a corpus combination", "[world][principles][split]") {
  for (const auto& h : w::heldout_intent_sets())
    for (const auto& [s, weight] : w::corpus_intent_sets()) CHECK_FALSE(s == h);
}
