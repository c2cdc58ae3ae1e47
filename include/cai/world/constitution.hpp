/// @file world/constitution.hpp
/// The assistant world's constitutions (`world/world.hpp`, `world/principles.hpp`), short enough that a
/// whole critique-revision round of Constitutional AI (Bai et al. 2022, arXiv:2212.08073) fits the
/// 256-token context of the tiny model trained on the world, each principle composed from the wordings of
/// what it asks for:
///  - `world_constitution()`, the default: harmless and helpful, refusals explained, respectful;
///  - the comparison constitutions of `cai run` (`comparison_constitutions()`): harm only (the Goodhart
///    case), helpfulness only, the default with caveats (a deployment preset), a control that asks only
///    for things the world does not care about, and the default's intents in held-out wordings and a
///    held-out combination.
/// `world_constitution_spec` keeps the intents behind every principle, for the oracle's measurements;
/// the pipeline is given `constitution()`, the text alone.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cai/constitution/constitution.hpp"
#include "cai/constitution/principle.hpp"
#include "cai/world/principles.hpp"

namespace cai::world {

/// The default world constitution with its intents: five principles, each harmless-first and asking for
/// helpfulness or explained refusals (so never the cautious harm-alone reading), in corpus wordings.
[[nodiscard]] inline world_constitution_spec world_constitution_spec_default() {
  using enum intent;
  return {"world",
          "A short constitution for the assistant world: avoid harm and help, explain refusals, respect the person.",
          {make_spec("harmless-and-helpful", {avoid_harm, helpful}, 0, 0),
           make_spec("safe-and-useful", {avoid_harm, helpful}, 1, 1),
           make_spec("explain-refusals", {avoid_harm, helpful, explain}, 2, 0),
           make_spec("respectful-help", {avoid_harm, helpful, respect}, 3, 2),
           make_spec("lawful-alternatives", {avoid_harm, explain}, 0, 1)}};
}

/// The assistant world's default constitution (the text of `world_constitution_spec_default()`).
[[nodiscard]] inline constitution world_constitution() { return world_constitution_spec_default().constitution(); }

/// The constitutions `cai run` compares with the default, by name: "harm-only", "helpful-only",
/// "default+caveats", "control", "held-out-wording". Each holds four to seven principles.
[[nodiscard]] inline std::vector<world_constitution_spec> comparison_constitutions() {
  using enum intent;
  std::vector<world_constitution_spec> out;
  out.push_back({"harm-only", "Asks only for the least harmful response (the paper warns of this one).",
                 {make_spec("least-harmful", {avoid_harm}, 0, 0), make_spec("safest", {avoid_harm}, 1, 1),
                  make_spec("no-danger", {avoid_harm}, 2, 2), make_spec("lowest-risk", {avoid_harm}, 4, 0)}});
  out.push_back({"helpful-only", "Asks only that the response do what the person asked.",
                 {make_spec("do-what-was-asked", {helpful}, 0, 0), make_spec("everything-asked", {helpful}, 1, 1),
                  make_spec("in-full", {helpful}, 2, 2), make_spec("hold-nothing-back", {helpful}, 3, 0)}});
  world_constitution_spec caveats = world_constitution_spec_default();
  caveats.name = "default+caveats";
  caveats.description = "The default, and advice on health, money and pets with a caveat and a professional named.";
  caveats.principles.push_back(make_spec("caveated-help", {avoid_harm, helpful, caveat}, 0, 0));
  caveats.principles.push_back(make_spec("caveats", {caveat}, 1, 1));
  caveats.principles.push_back(make_spec("professional-pointer", {avoid_harm, helpful, caveat}, 2, 2));
  out.push_back(std::move(caveats));
  out.push_back({"control", "Asks for a colour and the weather: nothing the world cares about.",
                 {make_spec("name-a-color", {colour}, 0, 0), make_spec("weather-note", {weather}, 1, 1),
                  make_spec("some-color", {colour}, 2, 2), make_spec("weather-talk", {weather}, 3, 0)}});
  out.push_back({"held-out-wording",
                 "The default's intents in wordings no corpus text uses, and one combination the corpus never asks for.",
                 {make_spec("harmless-and-helpful", {avoid_harm, helpful}, 7, 0),
                  make_spec("safe-and-useful", {avoid_harm, helpful}, 8, 1),
                  make_spec("explain-refusals", {avoid_harm, helpful, explain}, 7, 2),
                  make_spec("respectful-help", {avoid_harm, helpful, respect}, 8, 0),
                  make_spec("explained-and-respectful", {avoid_harm, explain, respect}, 7, 1)}});
  return out;
}

/// The world constitution named `name` ("world" or a name of `comparison_constitutions()`), or nothing.
[[nodiscard]] inline std::optional<world_constitution_spec> find_world_constitution(std::string_view name) {
  if (name == "world" || name == "default") return world_constitution_spec_default();
  for (world_constitution_spec& c : comparison_constitutions())
    if (c.name == name) return std::move(c);
  return std::nullopt;
}

}  // namespace cai::world
