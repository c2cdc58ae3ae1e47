// test: a schedule whose stage needs an artefact no earlier stage provides names the stage and the artefact
// expect-error: static.assert(ion)? failed.*a stage needs an artefact that no earlier stage provides
// expect-error: stage_needs_an_artefact_that_no_earlier_stage_provides<ppo_after_inputs, cai::artefact::preference_model
#include <filesystem>

#include <cai/compose/schedule.hpp>

// A stage that trains the policy against a preference model, which nothing before it provides.
struct ppo_after_inputs {
  static constexpr std::string_view name = "ppo";
  using needs = cai::artefacts<cai::artefact::policy, cai::artefact::preference_model>;
  using provides = cai::artefacts<cai::artefact::policy>;
  cai::artefact_paths run(cai::stage_context&, const std::filesystem::path&) { return {}; }
};

#if CAI_COMPILE_FAIL_FIXED
using given = cai::inputs<cai::artefact::policy, cai::artefact::preference_model>;
#else
using given = cai::inputs<cai::artefact::policy, cai::artefact::red_team_prompts>;
#endif

void run(cai::stage_context& context) {
  cai::schedule<given, ppo_after_inputs> s(given{}, ppo_after_inputs{});
  s.run(context);
}
