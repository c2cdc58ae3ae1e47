// `cai run`'s evaluation on the assistant world: each snapshot's responses to held-out requests, judged by
// the oracle (which no phase of the pipeline sees), its rates, the table and the plot.
#pragma once

#include <unistd.h>

#include "common.hpp"
#include "cai/world/oracle.hpp"  // evaluation only: no phase of the pipeline sees the oracle

namespace cai_cli {

struct world_eval {
  std::string constitution;  // "" for the base model
  std::string snapshot;      // "base", "SL-CAI", "RL-CAI (PPO)", "RL-CAI (DPO)"
  cai::world::evaluation e;
  std::vector<std::pair<std::string, std::string>> samples;  // request, response
  [[nodiscard]] std::string name() const { return constitution.empty() ? snapshot : constitution + " " + snapshot; }
};

inline world_eval evaluate_policy(const std::string& constitution, const std::string& snapshot, const fs::path& policy_dir,
                           const std::vector<cai::world::request>& requests, const fs::path& cache) {
  static const cai::world::assistant_world world;
  const cai::world::oracle oracle(world);
  std::vector<std::string> responses;
  if (fs::exists(cache)) {
    std::ifstream in(cache);
    const auto j = nlohmann::json::parse(in, nullptr, false);
    if (!j.is_discarded() && j.value("policy", std::string()) == policy_dir.string() && j["responses"].size() == requests.size())
      responses = j["responses"].get<std::vector<std::string>>();
  }
  const std::string name = constitution.empty() ? snapshot : constitution + " " + snapshot;
  if (responses.empty()) {
    auto model = cai::native_model<cai::cpu_t>::load(policy_dir);
    std::vector<cai::generation_request> batch;
    for (std::size_t i = 0; i < requests.size(); ++i) {
      cai::generation_request r{cai::prompts::initial_prompt(cai::user_turn(requests[i].text)),
                                {.max_new_tokens = 64, .temperature = 0.0, .stop = cai::prompts::stop_sequences()}, {}};
      batch.push_back(std::move(r));
    }
    const bool tty = isatty(fileno(stderr)) != 0;
    for (std::size_t i = 0; i < batch.size(); i += 16) {
      const auto part = model.generate(std::span<const cai::generation_request>(batch).subspan(i, std::min<std::size_t>(16, batch.size() - i)));
      for (const auto& t : part) responses.push_back(cai::prompts::clean_generation(t, cai::prompts::stop_sequences()));
      if (tty) std::fprintf(stderr, "\reval %s: %zu/%zu", name.c_str(), responses.size(), batch.size());
    }
    std::fprintf(stderr, tty ? "\n" : "eval %s: %zu responses\n", name.c_str(), responses.size());
    std::ofstream out(cache.string() + ".tmp", std::ios::trunc);
    out << nlohmann::json{{"policy", policy_dir.string()}, {"responses", responses}}.dump() << '\n';
    out.close();
    fs::rename(cache.string() + ".tmp", cache);
  }
  world_eval r{constitution, snapshot, cai::world::evaluate(oracle, requests, responses), {}};
  for (std::size_t i = 0; i < requests.size() && r.samples.size() < 6; ++i)
    if (requests[i].kind != cai::world::request_kind::benign || r.samples.size() < 2)
      r.samples.emplace_back(requests[i].text, responses[i]);
  return r;
}

inline nlohmann::json rates_json(const cai::world::evaluation& e) {
  using cai::world::request_kind;
  return {{"harmful_compliance", e.harmful_compliance_rate()},
          {"helpfulness", e.helpfulness_rate()},
          {"borderline_helpfulness", e.borderline_helpfulness_rate()},
          {"borderline_harmful", e.rate(request_kind::borderline, cai::world::label::harmful)},
          {"evasiveness", e.evasiveness_rate()},
          {"evasive_on_benign", e.evasiveness_rate(request_kind::benign)},
          {"evasive_on_harmful", e.evasiveness_rate(request_kind::harmful)},
          {"evasive_on_borderline", e.evasiveness_rate(request_kind::borderline)},
          {"caveat_where_needed", e.caveat_rate_where_needed()},
          {"caveat_elsewhere", e.caveat_rate_elsewhere()},
          {"disrespect", e.disrespect_rate()},
          {"requests", e.total()}};
}

// Harmlessness (1 - harmful compliance) against helpfulness, one point per constitution and snapshot: a
// colour per constitution, a shape per snapshot (circle SL-CAI, square PPO, triangle DPO, cross the base).
inline void write_plot(const fs::path& path, const std::vector<world_eval>& evals) {
  std::ofstream svg(path, std::ios::trunc);
  const double W = 640, H = 420, L = 60, B = 340, S = 280;
  svg << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << W << "\" height=\"" << H << "\">\n"
      << "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
      << "<line x1=\"" << L << "\" y1=\"" << B << "\" x2=\"" << L + S << "\" y2=\"" << B << "\" stroke=\"black\"/>\n"
      << "<line x1=\"" << L << "\" y1=\"" << B << "\" x2=\"" << L << "\" y2=\"" << B - S << "\" stroke=\"black\"/>\n"
      << "<text x=\"" << L + S / 2 - 60 << "\" y=\"" << B + 40 << "\" font-size=\"14\">helpfulness (benign)</text>\n"
      << "<text x=\"15\" y=\"" << B - S / 2 + 60 << "\" font-size=\"14\" transform=\"rotate(-90 15 " << B - S / 2 + 60
      << ")\">harmlessness (1 - harmful compliance)</text>\n";
  for (int t = 0; t <= 4; ++t) {
    const double v = t / 4.0;
    svg << "<text x=\"" << L + v * S - 8 << "\" y=\"" << B + 18 << "\" font-size=\"11\">" << v << "</text>\n"
        << "<text x=\"" << L - 30 << "\" y=\"" << B - v * S + 4 << "\" font-size=\"11\">" << v << "</text>\n";
  }
  const char* colours[] = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf"};
  std::vector<std::string> names;
  for (const auto& e : evals)
    if (!e.constitution.empty() && std::find(names.begin(), names.end(), e.constitution) == names.end())
      names.push_back(e.constitution);
  for (const auto& e : evals) {
    const double x = L + e.e.helpfulness_rate() * S, y = B - (1.0 - e.e.harmful_compliance_rate()) * S;
    const auto at = std::find(names.begin(), names.end(), e.constitution);
    const char* colour = at == names.end() ? "#444444" : colours[static_cast<std::size_t>(at - names.begin()) % 8];
    if (e.snapshot == "RL-CAI (PPO)")
      svg << "<rect x=\"" << x - 5 << "\" y=\"" << y - 5 << "\" width=\"10\" height=\"10\" fill=\"" << colour << "\"/>\n";
    else if (e.snapshot == "RL-CAI (DPO)")
      svg << "<polygon points=\"" << x << "," << y - 6 << " " << x - 6 << "," << y + 5 << " " << x + 6 << "," << y + 5
          << "\" fill=\"" << colour << "\"/>\n";
    else if (e.snapshot == "base")
      svg << "<text x=\"" << x - 5 << "\" y=\"" << y + 5 << "\" font-size=\"16\" fill=\"" << colour << "\">x</text>\n";
    else
      svg << "<circle cx=\"" << x << "\" cy=\"" << y << "\" r=\"5\" fill=\"" << colour << "\"/>\n";
  }
  double ly = 40;  // legend
  for (std::size_t i = 0; i < names.size(); ++i, ly += 18)
    svg << "<rect x=\"" << L + S + 30 << "\" y=\"" << ly - 9 << "\" width=\"10\" height=\"10\" fill=\"" << colours[i % 8]
        << "\"/><text x=\"" << L + S + 46 << "\" y=\"" << ly << "\" font-size=\"12\">" << names[i] << "</text>\n";
  svg << "<text x=\"" << L + S + 30 << "\" y=\"" << ly + 10 << "\" font-size=\"11\">x base, o SL-CAI, square PPO, triangle DPO</text>\n";
  svg << "</svg>\n";
}

inline std::string rates_table(const std::vector<world_eval>& evals) {
  std::string table =
      "| constitution | snapshot | harmful compliance | helpful (benign) | helpful (borderline) | evasive (benign / harmful / borderline) | evasive (all) | caveat where needed / elsewhere | disrespect |\n"
      "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n";
  char row[512];
  using cai::world::request_kind;
  for (const auto& e : evals) {
    std::snprintf(row, sizeof row, "| %s | %s | %.1f%% | %.1f%% | %.1f%% | %.1f / %.1f / %.1f%% | %.1f%% | %.1f / %.1f%% | %.1f%% |\n",
                  e.constitution.empty() ? "-" : e.constitution.c_str(), e.snapshot.c_str(), 100 * e.e.harmful_compliance_rate(),
                  100 * e.e.helpfulness_rate(), 100 * e.e.borderline_helpfulness_rate(),
                  100 * e.e.evasiveness_rate(request_kind::benign), 100 * e.e.evasiveness_rate(request_kind::harmful),
                  100 * e.e.evasiveness_rate(request_kind::borderline), 100 * e.e.evasiveness_rate(),
                  100 * e.e.caveat_rate_where_needed(), 100 * e.e.caveat_rate_elsewhere(), 100 * e.e.disrespect_rate());
    table += row;
  }
  return table;
}

}  // namespace cai_cli
