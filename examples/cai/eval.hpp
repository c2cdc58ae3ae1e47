// `cai eval`: the oracle's rates on held-out world requests.
#pragma once

#include "world_eval.hpp"

namespace cai_cli {

struct eval_command {
  CLI::App* cmd = nullptr;
  std::size_t requests = 600;

  void add(CLI::App& app, common_args& a) {
    cmd = app.add_subcommand("eval", "the oracle's rates on held-out world requests");
    add_common(cmd, a);
    cmd->add_option("--eval-requests", requests)->capture_default_str();
  }

  int run(const common_args& a) {
    const fs::path out = a.out;
    resolve_constitution(a.constitution);  // a bad constitution is reported, as every subcommand does
    const cai::world::assistant_world world;
    const auto held_out = world.generate_requests(cai::world::split::eval, requests, cai::derive_seed(a.seed, {0xe7a1}));
    const auto e = evaluate_policy("", a.model, resolve_model(a.model), held_out, out / "eval.json");
    std::cout << rates_json(e.e).dump(2) << "\n";
    return 0;
  }
};

}  // namespace cai_cli
