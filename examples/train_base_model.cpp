// train_base_model: trains the assistant world's base model from scratch (docs/world.md, "The shipped base
// model"): the helpful-only starting point of Constitutional AI (Bai et al. 2022, arXiv:2212.08073), a tiny
// Llama-style transformer that knows the transcript format, the critique and revision turns of SL-CAI and
// the multiple-choice comparisons of RLAIF, and that complies with harmful requests.
//
//   1. the world's corpus (cai::world::generate_corpus, seeded);
//   2. a byte-level BPE trained on it (cai::train_bpe), "<|endoftext|>" as id 0;
//   3. each record tokenized as an sft_sequence (see `loss_mode` for which tokens are learned);
//   4. a transformer initialised from the seed, trained with sft_trainer + AdamW + warm-up and cosine decay,
//      with resumable checkpoints;
//   5. config.json, model.safetensors, tokenizer.json and metrics.json written to --out;
//   6. the saved directory loaded back with native_model and evaluated with the world's oracle on held-out
//      requests (held-out topics and phrasings): harmful compliance, helpfulness, evasiveness, critiques,
//      revisions and comparisons.
//
// `--evaluate` skips 1-5 and evaluates the model already in --out. scripts/train-base-model is the one
// command that rebuilds the shipped model in models/assistant-tiny.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <span>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "cai/model/bpe_trainer.hpp"
#include "cai/model/load.hpp"
#include "cai/model/native_model.hpp"
#include "cai/prompts/feedback.hpp"
#include "cai/prompts/transcript.hpp"
#include "cai/train/adamw.hpp"
#include "cai/train/schedule.hpp"
#include "cai/train/sft.hpp"
#include "cai/world/corpus.hpp"
#include "cai/world/oracle.hpp"
#include "cai/world/skills.hpp"

namespace {

namespace fs = std::filesystem;
namespace cw = cai::world;
using json = nlohmann::json;

constexpr const char* end_of_text = "<|endoftext|>";

/// Which tokens of a record the model learns.
///  - completion: the completion only (the prompt is context), as SFT usually does;
///  - document: every token after the first;
///  - mixed (default): whole documents for dialogues and comparisons, the completion only for critique
///    rounds. A critique round's prompt holds a response in a drawn style (evasive, condescending,
///    harmless-helpful...) after "Assistant:"; learning it would teach the dialogue turn to refuse
///    sometimes, and the base model must be helpful-only. Everything else is worth learning: the requests
///    and the option texts of comparisons are the world's language (which payload, reason and alternative
///    go with which task), at no extra cost, since every token of a row is computed anyway.
enum class loss_mode { completion, document, mixed };

/// The tokens of one record, the prompt and the completion tokenized apart (as a generating model sees
/// them: the prompt encoded alone, the completion written after it), the completion ended by <|endoftext|>.
struct tokenized_record {
  cw::record_type type;
  std::vector<std::int32_t> prompt, completion;
};

tokenized_record tokenize(const cai::bpe_tokenizer& tok, const cw::corpus_record& r, std::int32_t eot) {
  tokenized_record t{r.type, tok.encode(r.prompt), tok.encode(r.completion)};
  t.completion.push_back(eot);
  return t;
}

cai::sft_sequence to_sequence(const tokenized_record& t, loss_mode mode) {
  const bool whole = mode == loss_mode::document ||
                     (mode == loss_mode::mixed && t.type != cw::record_type::critique_revision);
  cai::sft_sequence s;
  if (whole) {  // the first token is the context of the rest
    s.prompt.assign(t.prompt.begin(), t.prompt.begin() + 1);
    s.response.assign(t.prompt.begin() + 1, t.prompt.end());
  } else {
    s.prompt = t.prompt;
  }
  s.response.insert(s.response.end(), t.completion.begin(), t.completion.end());
  return s;
}

/// Records of the three kinds, as generate_corpus writes them (`make_record`), but from held-out requests
/// (held-out topics and phrasings): what the loss on unseen documents is measured on. `n` of each kind.
std::vector<cw::corpus_record> heldout_records(const cw::assistant_world& w, std::size_t n, std::uint64_t seed) {
  const auto requests = w.generate_requests(cw::split::eval, 3 * n, seed);
  const cw::corpus_options options;
  std::vector<cw::corpus_record> out;
  for (std::size_t i = 0; i < requests.size(); ++i) {
    const auto type = static_cast<cw::record_type>(i % 3);
    out.push_back(cw::make_record(w, type, requests[i], options, cai::derive_seed(seed, {i, 7})));
  }
  return out;
}

/// Mean negative log-likelihood (nats per token) of the completions (and <|endoftext|>), per record type,
/// and over whole documents, by one forward pass per batch of records.
template <class Model>
json measure_loss(Model& model, std::span<const tokenized_record> records) {
  const std::size_t V = model.config().vocab_size, B = 16;
  double comp[3] = {0, 0, 0}, doc[3] = {0, 0, 0};
  std::size_t comp_n[3] = {0, 0, 0}, doc_n[3] = {0, 0, 0};
  for (std::size_t first = 0; first < records.size(); first += B) {
    const std::size_t rows = std::min(B, records.size() - first);
    std::size_t T = 0;
    for (std::size_t i = 0; i < rows; ++i)
      T = std::max(T, records[first + i].prompt.size() + records[first + i].completion.size());
    T = std::min(T, model.config().context_length);
    std::vector<std::int32_t> ids(rows * T, 0);
    for (std::size_t i = 0; i < rows; ++i) {
      const auto& r = records[first + i];
      std::size_t t = 0;
      for (auto id : r.prompt) if (t < T) ids[i * T + t++] = id;
      for (auto id : r.completion) if (t < T) ids[i * T + t++] = id;
    }
    const auto logits = model.forward(ids, rows, T);  // logits: (rows, T, V)
    for (std::size_t i = 0; i < rows; ++i) {
      const auto& r = records[first + i];
      const auto k = static_cast<std::size_t>(r.type);
      const std::size_t len = std::min(T, r.prompt.size() + r.completion.size());
      for (std::size_t t = 0; t + 1 < len; ++t) {
        const float* row = logits.data() + (i * T + t) * V;
        const float m = *std::max_element(row, row + V);
        double sum = 0;
        for (std::size_t v = 0; v < V; ++v) sum += std::exp(static_cast<double>(row[v] - m));
        const double nll = std::log(sum) - static_cast<double>(row[static_cast<std::size_t>(ids[i * T + t + 1])] - m);
        doc[k] += nll, ++doc_n[k];
        if (t + 1 >= r.prompt.size()) comp[k] += nll, ++comp_n[k];
      }
    }
  }
  json out;
  double ct = 0, dt = 0;
  std::size_t cn = 0, dn = 0;
  for (std::size_t k = 0; k < 3; ++k) {
    const std::string name(cw::to_string(static_cast<cw::record_type>(k)));
    if (comp_n[k]) out[name] = {{"completion", comp[k] / comp_n[k]}, {"document", doc[k] / doc_n[k]}};
    ct += comp[k], cn += comp_n[k], dt += doc[k], dn += doc_n[k];
  }
  out["all"] = {{"completion", cn ? ct / cn : 0.0}, {"document", dn ? dt / dn : 0.0}};
  return out;
}

/// Stops the run once `seconds` have passed (0: never); the trainer then saves its checkpoint.
struct time_limit {
  double seconds = 0;
  bool hit = false;
  bool on_step(const cai::train_progress& p) {
    if (seconds > 0 && p.elapsed_seconds >= seconds) hit = true;
    return hit;
  }
};

/// Keeps the mean loss of the last `window` steps.
struct loss_tracker {
  std::size_t window = 50;
  std::vector<double> losses;
  void on_step(const cai::train_progress& p) { losses.push_back(p.loss); }
  [[nodiscard]] double recent_mean() const {
    if (losses.empty()) return 0.0;
    const std::size_t n = std::min(window, losses.size());
    double s = 0;
    for (std::size_t i = losses.size() - n; i < losses.size(); ++i) s += losses[i];
    return s / static_cast<double>(n);
  }
};

std::string quote(std::string s) {
  std::string out;
  for (char c : s) out += c == '\n' ? std::string("\\n") : std::string(1, c);
  return "\"" + out + "\"";
}

/// The oracle evaluation of a model directory on held-out requests (see the file comment).
json evaluate_model(const fs::path& dir, std::size_t n, std::uint64_t seed, bool verbose) {
  using clock = std::chrono::steady_clock;
  const auto start = clock::now();
  auto model = cai::native_model<>::load(dir);
  const cw::assistant_world w;
  const cw::oracle judge(w);
  const cai::constitution c = cw::world_constitution();
  const auto requests = w.generate_requests(cw::split::eval, n, seed);
  const auto stops = cai::prompts::stop_sequences();
  json out;

  // 1. Dialogues, greedy and sampled (temperature 1).
  std::vector<std::string> greedy;
  for (const char* how : {"greedy", "sampled"}) {
    std::vector<cai::generation_request> batch;
    for (std::size_t i = 0; i < requests.size(); ++i) {
      cai::generation_request g;
      g.prompt = cai::prompts::initial_prompt(cai::user_turn(requests[i].text));
      g.options.max_new_tokens = 64;
      g.options.temperature = std::string(how) == "greedy" ? 0.0 : 1.0;
      g.options.seed = cai::derive_seed(seed, {i, 1});
      g.options.stop = stops;
      batch.push_back(std::move(g));
    }
    const auto responses = model.generate(batch);
    const auto e = cw::evaluate(judge, requests, responses);
    std::size_t formatted = 0;
    for (const auto& r : responses) formatted += r.size() > 1 && r[0] == ' ' && r.find("\n") == std::string::npos;
    out["dialogue"][how] = {
        {"requests", e.total()},
        {"harmful_compliance_rate", e.harmful_compliance_rate()},
        {"helpfulness_rate", e.helpfulness_rate()},
        {"evasiveness_rate", e.evasiveness_rate()},
        {"disrespect_rate", e.disrespect_rate()},
        {"borderline_helpful_rate", e.rate(cw::request_kind::borderline, cw::label::helpful)},
        {"borderline_harmful_rate", e.rate(cw::request_kind::borderline, cw::label::harmful)},
        {"harmful_request_helpful_rate", e.rate(cw::request_kind::harmful, cw::label::helpful)},
        {"one_line_response_rate", static_cast<double>(formatted) / static_cast<double>(responses.size())}};
    if (std::string(how) == "greedy") greedy = responses;
  }

  // 2. Critique and revision of the model's own greedy responses (SL-CAI), a principle drawn per request.
  const std::size_t m = std::min<std::size_t>(n, 90);
  std::vector<std::string> critique_prompts, critique_requests, revision_requests;
  std::vector<cai::generation_request> batch;
  for (std::size_t i = 0; i < m; ++i) {
    cai::rng g(cai::derive_seed(seed, {i, 2}));
    const auto& p = c.draw_critique(g);
    critique_prompts.push_back(cai::prompts::critique_prompt(
        cai::exchange{cai::user_turn(requests[i].text), greedy[i].empty() ? greedy[i] : greedy[i].substr(1)},
        p.critique_request));
    revision_requests.push_back(p.revision_request);
    cai::generation_request r;
    r.prompt = critique_prompts.back();
    r.options.max_new_tokens = 80;
    r.options.temperature = 0.0;
    r.options.stop = stops;
    batch.push_back(std::move(r));
  }
  const auto critiques = model.generate(batch);
  for (std::size_t i = 0; i < m; ++i) {
    std::string critique = critiques[i];
    if (!critique.empty() && critique[0] == ' ') critique.erase(0, 1);
    batch[i].prompt = cai::prompts::revision_prompt(critique_prompts[i], critique, revision_requests[i]);
  }
  const auto revisions = model.generate(batch);
  std::size_t harmful_responses = 0, flagged = 0, fine_responses = 0, passed = 0;
  std::vector<cw::request> revised_requests(requests.begin(), requests.begin() + static_cast<std::ptrdiff_t>(m));
  for (std::size_t i = 0; i < m; ++i) {
    const cw::labels l = judge.judge(requests[i], greedy[i]);
    const bool says_harmful = critiques[i].find("harmful") != std::string::npos;
    if (l.harmful) harmful_responses += 1, flagged += says_harmful;
    else if (!l.evasive && !l.disrespectful) fine_responses += 1, passed += !says_harmful;
  }
  const auto rev = cw::evaluate(judge, revised_requests, revisions);
  out["critique_revision"] = {
      {"rounds", m},
      {"critiques_naming_harm_of_harmful_responses", harmful_responses ? double(flagged) / double(harmful_responses) : 0.0},
      {"critiques_not_naming_harm_of_harmless_responses", fine_responses ? double(passed) / double(fine_responses) : 0.0},
      {"revision_harmful_compliance_rate", rev.harmful_compliance_rate()},
      {"revision_helpfulness_rate", rev.helpfulness_rate()},
      {"revision_harmful_request_helpful_rate", rev.rate(cw::request_kind::harmful, cw::label::helpful)},
      {"revision_evasiveness_rate", rev.evasiveness_rate()},
      {"revision_disrespect_rate", rev.disrespect_rate()}};

  // 3. Comparisons on held-out requests: log P(" (A)") against log P(" (B)"), and the greedy answer.
  const auto comparisons = heldout_records(w, n / 3 + 1, cai::derive_seed(seed, {3}));
  std::vector<cai::scoring_request> scoring;
  std::vector<cai::generation_request> answers;
  std::vector<char> truth;
  const std::size_t context = model.model().config().context_length;
  for (const auto& r : comparisons) {
    if (r.type != cw::record_type::comparison || model.tokenizer().encode(r.prompt).size() + 4 > context) continue;
    scoring.push_back({r.prompt, " (A)"});
    scoring.push_back({r.prompt, " (B)"});
    cai::generation_request g;
    g.prompt = r.prompt;
    g.options.max_new_tokens = 4;
    g.options.temperature = 0.0;
    answers.push_back(std::move(g));
    truth.push_back(r.completion == " (A)" ? 'A' : 'B');
  }
  const auto scores = model.score(scoring);
  const auto said = model.generate(answers);
  std::size_t right = 0, formatted = 0, said_right = 0, chose_a = 0;
  for (std::size_t i = 0; i < truth.size(); ++i) {
    const char pick = scores[2 * i] >= scores[2 * i + 1] ? 'A' : 'B';
    right += pick == truth[i];
    chose_a += pick == 'A';
    const bool ok = said[i] == " (A)" || said[i] == " (B)";
    formatted += ok;
    said_right += ok && said[i][2] == truth[i];
  }
  const double k = static_cast<double>(truth.size());
  out["comparison"] = {{"questions", truth.size()},
                       {"accuracy_by_log_probability", right / k},
                       {"share_choosing_A", chose_a / k},
                       {"greedy_answer_well_formed_rate", formatted / k},
                       {"greedy_answer_accuracy", said_right / k}};
  // 4. Reading principles: revisions and labels on the pipeline's requests under each world constitution
  //    (cai::world::measure_skills), and the label-flip check (harm only against helpfulness only).
  try {
    const auto pipeline = w.generate_requests(cw::split::pipeline, std::min<std::size_t>(n, 150), cai::derive_seed(seed, {5}));
    std::vector<cw::world_constitution_spec> specs = cw::comparison_constitutions();
    specs.insert(specs.begin(), cw::world_constitution_spec_default());
    std::size_t revisions = 0, revisions_agreeing = 0, labels = 0, labels_agreeing = 0;
    for (const auto& spec : specs) {
      const auto m = cw::measure_skills(model, w, std::span<const cw::request>(pipeline), spec, cai::derive_seed(seed, {6}), 64, 0);
      out["skills"][spec.name] = {{"revision_agreement", m.revision_agreement()}, {"revisions", m.revisions},
                                  {"label_agreement", m.label_agreement()}, {"labels", m.labels}};
      revisions += m.revisions, revisions_agreeing += m.revisions_agreeing, labels += m.labels, labels_agreeing += m.labels_agreeing;
    }
    out["skills"]["all"] = {{"revision_agreement", revisions ? double(revisions_agreeing) / double(revisions) : 0.0},
                            {"label_agreement", labels ? double(labels_agreeing) / double(labels) : 0.0}};
    const auto flip = cw::label_flip_check(model, w, std::span<const cw::request>(pipeline), specs.at(1).principles.front(),
                                           specs.at(2).principles.front(), cai::derive_seed(seed, {7}));
    out["label_flip"] = {{"pairs", flip.pairs}, {"harm_only_agreement", flip.first_agreement()},
                         {"helpful_only_agreement", flip.second_agreement()}, {"flip_rate", flip.flip_rate()}};
  } catch (const cai::error& e) {  // a model whose context cannot hold a world round (a tiny vocabulary)
    out["skills_skipped"] = e.what();
  }
  out["seconds"] = std::chrono::duration<double>(clock::now() - start).count();

  // 5. Examples: one request of each kind, its response, critique and revision; one comparison.
  if (verbose) {
    for (std::size_t i = 0; i < std::min<std::size_t>(m, 3); ++i) {
      const auto l = judge.judge(requests[i], greedy[i]);
      std::cout << "\n[" << cw::to_string(requests[i].kind) << "] Human: " << requests[i].text << "\n  Assistant:"
                << greedy[i] << "\n  oracle: harmful " << l.harmful << ", helpful " << l.helpful << ", evasive "
                << l.evasive << "\n  Critique:" << critiques[i] << "\n  Revision:" << revisions[i] << "\n";
    }
    if (!answers.empty())
      std::cout << "\n[comparison] " << quote(answers[0].prompt.substr(answers[0].prompt.size() - std::min<std::size_t>(answers[0].prompt.size(), 300)))
                << "\n  model:" << said[0] << "  (right: (" << truth[0] << "))\n";
  }
  json examples = json::array();
  for (std::size_t i = 0; i < std::min<std::size_t>(m, 6); ++i)
    examples.push_back({{"kind", cw::to_string(requests[i].kind)}, {"request", requests[i].text},
                        {"response", greedy[i]}, {"critique", critiques[i]}, {"revision", revisions[i]}});
  out["examples"] = examples;
  if (!answers.empty()) out["comparison_example"] = {{"prompt", answers[0].prompt}, {"answer", said[0]},
                                                     {"right", std::string(" (") + truth[0] + ")"}};
  return out;
}

void print_evaluation(const json& e) {
  auto pct = [](const json& v) { return std::to_string(static_cast<int>(std::lround(v.get<double>() * 100))) + "%"; };
  for (const char* how : {"greedy", "sampled"}) {
    const auto& d = e["dialogue"][how];
    std::cout << "dialogues (" << how << ", " << d["requests"] << " held-out requests): harmful compliance "
              << pct(d["harmful_compliance_rate"]) << ", helpfulness " << pct(d["helpfulness_rate"]) << ", evasiveness "
              << pct(d["evasiveness_rate"]) << ", disrespect " << pct(d["disrespect_rate"]) << ", borderline helpful "
              << pct(d["borderline_helpful_rate"]) << " / harmful " << pct(d["borderline_harmful_rate"])
              << ", one-line responses " << pct(d["one_line_response_rate"]) << "\n";
  }
  const auto& c = e["critique_revision"];
  std::cout << "critique-revision (" << c["rounds"] << " rounds): critiques name the harm of harmful responses "
            << pct(c["critiques_naming_harm_of_harmful_responses"]) << ", pass harmless ones "
            << pct(c["critiques_not_naming_harm_of_harmless_responses"]) << "; revisions: harmful compliance "
            << pct(c["revision_harmful_compliance_rate"]) << ", helpfulness " << pct(c["revision_helpfulness_rate"])
            << ", safe alternative on harmful requests " << pct(c["revision_harmful_request_helpful_rate"])
            << ", evasiveness " << pct(c["revision_evasiveness_rate"]) << "\n";
  if (e.contains("skills_skipped")) std::cout << "principle skills not measured: " << e["skills_skipped"].get<std::string>() << "\n";
  if (e.contains("skills"))
  for (const auto& [name, m] : e["skills"].items())
    std::cout << "pipeline requests under " << name << ": revisions agree with what the principle asks " << pct(m["revision_agreement"])
              << ", labels " << pct(m["label_agreement"]) << "\n";
  if (e.contains("label_flip")) {
  const auto& f = e["label_flip"];
  std::cout << "label flip (harm only vs helpfulness only, " << f["pairs"] << " pairs): agreement " << pct(f["harm_only_agreement"])
            << " / " << pct(f["helpful_only_agreement"]) << ", choice flips on " << pct(f["flip_rate"]) << "\n";
  }
  const auto& q = e["comparison"];
  std::cout << "comparisons (" << q["questions"] << " held-out questions): accuracy " << pct(q["accuracy_by_log_probability"])
            << " by log P((A)) vs log P((B)), greedy answers well formed " << pct(q["greedy_answer_well_formed_rate"])
            << " and right " << pct(q["greedy_answer_accuracy"]) << ", chooses (A) " << pct(q["share_choosing_A"]) << "\n";
}

}  // namespace

int main(int argc, char** argv) try {
  CLI::App app{"Trains the assistant world's helpful-only base model from scratch (docs/world.md)"};
  fs::path out = "models/assistant-tiny", checkpoint_dir;
  std::uint64_t seed = 20221215;
  const cw::corpus_options corpus_defaults;
  std::size_t dialogues = corpus_defaults.dialogues, critiques = corpus_defaults.critiques,
              comparisons = corpus_defaults.comparisons, vocab = 2048;
  std::size_t d_model = 256, layers = 4, heads = 4, d_ff = 0, context = 256;
  std::size_t steps = 2400, epochs = 3, batch = 8, warmup_steps = 100, checkpoint_every = 100, threads = 0;
  std::size_t eval_requests = 300, heldout = 100;
  float learning_rate = 2e-3f, weight_decay = 0.1f;
  double minutes = 0;
  std::string loss = "mixed";
  bool packing = true, evaluate_only = false, no_evaluate = false, keep_checkpoint = false;
  app.add_option("--out", out, "Output directory (config.json, model.safetensors, tokenizer.json, metrics.json)")->capture_default_str();
  app.add_option("--seed", seed, "Seed of the corpus, the initialisation and the data order")->capture_default_str();
  app.add_option("--dialogues", dialogues, "Corpus: helpful-only dialogues")->capture_default_str();
  app.add_option("--critiques", critiques, "Corpus: critique-revision rounds")->capture_default_str();
  app.add_option("--comparisons", comparisons, "Corpus: comparisons")->capture_default_str();
  app.add_option("--vocab", vocab, "BPE vocabulary size, at most")->capture_default_str();
  app.add_option("--d-model", d_model, "Width")->capture_default_str();
  app.add_option("--layers", layers, "Transformer blocks")->capture_default_str();
  app.add_option("--heads", heads, "Attention heads")->capture_default_str();
  app.add_option("--d-ff", d_ff, "MLP hidden size (0: 8/3 d_model, rounded up to 32)")->capture_default_str();
  app.add_option("--context", context, "Context length")->capture_default_str();
  app.add_option("--steps", steps, "Optimizer steps (0: --epochs passes)")->capture_default_str();
  app.add_option("--epochs", epochs, "Passes over the corpus when --steps is 0")->capture_default_str();
  app.add_option("--batch", batch, "Rows per step (packed: rows of --context tokens)")->capture_default_str();
  app.add_option("--lr", learning_rate, "Peak learning rate (AdamW)")->capture_default_str();
  app.add_option("--weight-decay", weight_decay, "AdamW weight decay")->capture_default_str();
  app.add_option("--warmup", warmup_steps, "Warm-up steps, then cosine decay to 10%")->capture_default_str();
  app.add_option("--loss", loss, "Learned tokens: completion, document or mixed (see the source)")
      ->check(CLI::IsMember({"completion", "document", "mixed"}))->capture_default_str();
  app.add_flag("--packing,!--no-packing", packing,
               "Pack sequences into rows of --context tokens (default), or pad each batch to its longest");
  app.add_option("--checkpoint-dir", checkpoint_dir, "Checkpoints (default: <out>/checkpoint, removed after a finished run)");
  app.add_option("--checkpoint-every", checkpoint_every, "Steps between checkpoints")->capture_default_str();
  app.add_flag("--keep-checkpoint", keep_checkpoint, "Keep the checkpoint after a finished run");
  app.add_option("--minutes", minutes, "Stop after this many minutes (0: no limit); a rerun resumes")->capture_default_str();
  app.add_option("--threads", threads, "OpenMP threads (0: OpenMP's default)")->capture_default_str();
  app.add_option("--eval-requests", eval_requests, "Held-out requests for the oracle evaluation")->capture_default_str();
  app.add_option("--heldout-records", heldout, "Held-out documents of each kind for the held-out loss")->capture_default_str();
  app.add_flag("--evaluate", evaluate_only, "Evaluate the model already in --out; do not train");
  app.add_flag("--no-evaluate", no_evaluate, "Train only");
  CLI11_PARSE(app, argc, argv);
#ifdef _OPENMP
  if (threads != 0) omp_set_num_threads(static_cast<int>(threads));
  threads = static_cast<std::size_t>(omp_get_max_threads());
#else
  threads = 1;
#endif

  if (evaluate_only) {
    json e = evaluate_model(out, eval_requests, cai::derive_seed(seed, {0xe7a1}), true);
    print_evaluation(e);
    if (fs::exists(out / "metrics.json")) {  // the evaluation of metrics.json is refreshed
      std::ifstream in(out / "metrics.json");
      json metrics = json::parse(in, nullptr, false);
      if (!metrics.is_discarded()) {
        metrics["evaluation"] = std::move(e);
        std::ofstream(out / "metrics.json", std::ios::trunc) << metrics.dump(2) << '\n';
      }
    }
    return 0;
  }

  const auto t0 = std::chrono::steady_clock::now();
  auto seconds_since = [](auto t) { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count(); };
  // 1. The corpus.
  const cw::assistant_world world;
  cw::corpus_options co;
  co.seed = seed;
  co.dialogues = dialogues;
  co.critiques = critiques;
  co.comparisons = comparisons;
  const auto corpus = cw::generate_corpus(world, co);
  const auto documents = cw::corpus_documents(corpus);

  // 2. The tokenizer.
  cai::bpe_trainer_options bo;
  bo.vocab_size = vocab;
  bo.special_tokens = {end_of_text};
  const cai::bpe_tokenizer tokenizer = cai::train_bpe(documents, bo);
  const auto eot = static_cast<std::int32_t>(*tokenizer.token_to_id(end_of_text));

  // 3. The sequences.
  const loss_mode mode = loss == "completion" ? loss_mode::completion : loss == "document" ? loss_mode::document : loss_mode::mixed;
  std::vector<tokenized_record> train_records;
  std::vector<cai::sft_sequence> sequences;
  std::size_t corpus_tokens = 0, longest = 0;
  std::size_t dropped = 0;
  for (const auto& r : corpus) {
    train_records.push_back(tokenize(tokenizer, r, eot));
    if (train_records.back().prompt.size() + 1 >= context) {  // no room for its completion (a tiny vocabulary)
      train_records.pop_back();
      ++dropped;
      continue;
    }
    sequences.push_back(to_sequence(train_records.back(), mode));
    const std::size_t len = sequences.back().prompt.size() + sequences.back().response.size();
    corpus_tokens += len;
    longest = std::max(longest, len);
  }
  std::vector<tokenized_record> heldout_tokens;
  for (const auto& r : heldout_records(world, heldout, cai::derive_seed(seed, {0x4e1d})))
    heldout_tokens.push_back(tokenize(tokenizer, r, eot));
  std::cout << "corpus: " << corpus.size() << " documents, " << corpus_tokens << " tokens (longest " << longest
            << "), vocabulary " << tokenizer.vocab_size() << " (" << seconds_since(t0) << " s)";
  if (dropped != 0) std::cout << "; " << dropped << " records dropped: their prompts fill the context";
  std::cout << "\n";

  // 4. The model and its training.
  if (d_ff == 0) d_ff = (8 * d_model / 3 + 31) / 32 * 32;
  auto config = cai::transformer_config::llama(tokenizer.vocab_size(), context, d_model, layers, heads, heads, d_ff,
                                               10000.0, /*tied_embeddings=*/true);
  config.validate();
  cai::transformer<> model(config);
  model.init_random(seed);
  std::size_t parameters = 0;
  for (const auto& p : model.parameters()) parameters += p.size;
  std::cout << "model: llama, d_model " << d_model << ", " << layers << " layers, " << heads << " heads, d_ff " << d_ff
            << ", context " << context << ", " << parameters << " parameters; " << threads << " threads\n";

  cai::full_parameters params(model);
  cai::sft_options so;
  so.train.batch_size = batch;
  so.train.epochs = epochs;
  so.train.max_steps = steps;
  so.train.seed = seed;
  so.train.max_grad_norm = 1.0;
  so.train.checkpoint_dir = checkpoint_dir.empty() ? out / "checkpoint" : checkpoint_dir;
  so.train.checkpoint_every = checkpoint_every;
  so.packing = packing;
  so.pad_id = eot;
  const std::size_t total = so.train.total_steps(sequences.size());
  const cai::warmup schedule{warmup_steps, cai::cosine_decay{total > warmup_steps ? total - warmup_steps : 1, 0.1}};
  cai::sft_trainer trainer(params,
                           cai::adamw{.learning_rate = learning_rate, .beta1 = 0.9f, .beta2 = 0.95f,
                                      .weight_decay = weight_decay},
                           so, schedule);
  cai::progress_bar bar(stderr, 25);
  time_limit limit{minutes * 60.0};
  loss_tracker tracker;
  const auto result = trainer.train(sequences, bar, limit, tracker);
  const std::size_t rows = trainer.rows(sequences).size();  // rows of one pass over the corpus
  const double tokens_per_second = result.seconds > 0 ? static_cast<double>(result.tokens) / result.seconds : 0.0;
  std::cout << "trained: " << result.steps << "/" << total << " steps (" << result.run_steps << " in this run"
            << (result.resumed ? ", resumed" : "") << "), " << result.tokens << " tokens in " << result.seconds
            << " s, " << std::lround(tokens_per_second) << " tokens/s, loss " << result.loss << " (mean of the last "
            << std::min<std::size_t>(50, tracker.losses.size()) << " steps " << tracker.recent_mean() << ")\n";

  // 5. The files.
  const json heldout_loss = measure_loss(model, heldout_tokens);
  const std::vector<tokenized_record> sample(train_records.begin(),
                                             train_records.begin() + static_cast<std::ptrdiff_t>(std::min<std::size_t>(300, train_records.size())));
  const json train_loss = measure_loss(model, sample);
  fs::create_directories(out);
  cai::save_model(model, out);
  tokenizer.save_tokenizer_json(out / "tokenizer.json");
  json metrics = {
      {"command", "scripts/train-base-model"},
      {"finished", result.steps >= total},
      {"model", {{"family", "llama"}, {"vocab_size", config.vocab_size}, {"context_length", context}, {"d_model", d_model},
                 {"layers", layers}, {"heads", heads}, {"d_ff", d_ff}, {"tied_embeddings", true}, {"parameters", parameters}}},
      {"corpus", {{"seed", std::to_string(seed)}, {"documents", corpus.size()}, {"dialogues", dialogues},
                  {"critiques", critiques}, {"comparisons", comparisons}, {"tokens", corpus_tokens}}},
      {"training", {{"loss", loss}, {"packing", packing}, {"steps", result.steps}, {"total_steps", total},
                    {"batch", batch}, {"epochs", static_cast<double>(result.steps * batch) / static_cast<double>(rows)},
                    {"learning_rate", learning_rate}, {"warmup", warmup_steps}, {"weight_decay", weight_decay},
                    {"threads", threads}, {"tokens", result.tokens}, {"seconds", result.seconds},
                    {"tokens_per_second", tokens_per_second}, {"resumed", result.resumed},
                    {"final_loss", result.loss}, {"final_loss_mean_last_50_steps", tracker.recent_mean()}}},
      {"loss_nats_per_token", {{"heldout_topics_and_phrasings", heldout_loss}, {"training_documents_first_300", train_loss}}}};
  std::cout << "held-out loss (nats/token, completions): " << heldout_loss["all"]["completion"] << "; whole documents: "
            << heldout_loss["all"]["document"] << "; training documents: " << train_loss["all"]["completion"] << "\n";

  // 6. The evaluation of the saved directory.
  if (!no_evaluate) {
    json e = evaluate_model(out, eval_requests, cai::derive_seed(seed, {0xe7a1}), true);
    print_evaluation(e);
    metrics["evaluation"] = std::move(e);
  }
  std::ofstream(out / "metrics.json") << metrics.dump(2) << '\n';
  if (result.steps >= total && !keep_checkpoint) fs::remove_all(so.train.checkpoint_dir);
  std::cout << "wrote " << out.string() << " (" << seconds_since(t0) << " s)\n";
  return limit.hit ? 3 : 0;
} catch (const std::exception& e) {
  std::cerr << "train_base_model: " << e.what() << "\n";
  return 1;
}
