/// @file remote/remote_model.hpp
/// `remote_model`: a `language_model` and `scoring_model` served over HTTP by OpenAI-compatible servers
/// (vLLM, TGI, llama.cpp's server, llama-cpp-python's server), so that the SL-CAI engine, the critics,
/// the judges and the rankers run unchanged against a fleet (Bai et al. 2022, arXiv:2212.08073, sample
/// and label with a remote model; the library decides what to ask, the servers compute).
///
/// Generation posts to `/completions` (the prompt in the paper's transcript format) or, with
/// `remote_api::chat`, to `/chat/completions` (the request's role-tagged `messages`; a request without
/// messages is sent as one user turn). Options map to the request: `max_new_tokens` -> `max_tokens`,
/// `temperature`, `top_p`, `top_k` (when `send_top_k`; OpenAI itself rejects it), `stop`, `seed`
/// (reduced modulo 2^31, the range every server accepts), and `n` = 1: one text per request, as the
/// concept wants. Stop sequences are also cut on this side, so a server that ignores them still gives
/// a text that ends before the first one.
///
/// Scoring (`remote_scoring::echo_logprobs`) posts `context + continuation` to `/completions` with
/// `echo: true, logprobs: 1, max_tokens: 1` and sums the returned log-probabilities of the prompt tokens
/// that start at or after the end of the context, using `logprobs.text_offset` (in Unicode code points
/// of the echoed text, as the Python servers count). The boundary must fall between tokens: when the
/// server's tokenizer merges the end of the context with the start of the continuation into one token,
/// `score` throws `remote_error` saying so (put the space at the start of the continuation, as
/// " Yes" / " (A)" do, and such merges do not happen with BPE tokenizers). The constructor probes the
/// first endpoint that answers once, with a small scoring request, and rejects a server that returns no
/// prompt log-probabilities (llama-cpp-python needs `--logits_all true`, its default in 0.3; vLLM
/// supports echo with logprobs). See docs/remote.md for each server's quirks.
///
/// All requests of a batch go through an `endpoint_pool` (remote/pool.hpp): concurrent, retried,
/// spread over the endpoints, returned in input order.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "cai/concepts.hpp"
#include "cai/error.hpp"
#include "cai/remote/pool.hpp"
#include "cai/text/generation.hpp"
#include "cai/text/types.hpp"

namespace cai {

/// Which endpoint generation uses.
enum class remote_api : std::uint8_t {
  completions,  ///< `/completions`, with `generation_request::prompt`
  chat          ///< `/chat/completions`, with `generation_request::messages`
};

/// How `score` computes log P(continuation | context).
enum class remote_scoring : std::uint8_t {
  none,          ///< the server cannot score: `score` throws `config_error`; no probe at construction
  echo_logprobs  ///< `/completions` with echo and logprobs; probed at construction
};

/// Configuration of a `remote_model`.
struct remote_options {
  pool_options pool;                 ///< endpoints, retries, timeouts, API key variable
  std::string model;                 ///< the `model` field of each request; empty: left out
  remote_api api = remote_api::completions;
  remote_scoring scoring = remote_scoring::echo_logprobs;
  bool send_top_k = true;            ///< send `top_k` when it is not 0 (vLLM, TGI, llama.cpp accept it)
  /// Text put before each scoring prompt that the server's text offsets do not count: a special token
  /// that detokenizes to nothing. llama-cpp-python (0.3) pairs each echoed token with the log-probs of
  /// the position after it unless the prompt starts with the model's BOS token; for a model whose
  /// tokenizer adds no BOS (SmolLM2), set this to the BOS text (`<|im_start|>`). Empty elsewhere.
  std::string score_prefix;
  /// Further fields put into every request body, for server-specific parameters (llama-cpp-python's
  /// server applies `repeat_penalty` 1.1 unless told `{"repeat_penalty": 1.0}`; vLLM's `min_p`, ...).
  /// The fields that cai sets itself take precedence.
  nlohmann::json extra_body = nlohmann::json::object();
};

namespace remote_detail {

/// Number of Unicode code points in UTF-8 text (bytes that do not continue a sequence).
[[nodiscard]] inline std::size_t code_points(std::string_view s) noexcept {
  std::size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

/// Cuts `text` before the first occurrence of any of `stop`.
[[nodiscard]] inline std::string cut_at_stop(std::string text, const std::vector<std::string>& stop) {
  std::size_t cut = text.size();
  for (const auto& s : stop) {
    if (s.empty()) continue;
    const auto pos = text.find(s);
    if (pos != std::string::npos) cut = std::min(cut, pos);
  }
  text.resize(cut);
  return text;
}

inline const char* role_name(role r) {
  switch (r) {
    case role::system: return "system";
    case role::assistant: return "assistant";
    case role::user: return "user";
  }
  return "user";
}

/// The log-probability of the tokens of an echoed prompt that start at or after the end of the context,
/// read from an OpenAI completions `logprobs` object. `sent` is the prompt as sent: an invisible prefix
/// of `prefix_bytes` bytes (not counted by the text offsets), the context (`context_bytes` bytes), then
/// the continuation. Throws `malformed_response` for a body that does not hold what was asked (retried),
/// `error` for a boundary inside a token (permanent).
[[nodiscard]] inline double sum_continuation_logprobs(const nlohmann::json& choice, std::string_view sent,
                                                      std::size_t prefix_bytes, std::size_t context_bytes) {
  if (!choice.is_object() || !choice.contains("logprobs") || !choice["logprobs"].is_object())
    throw malformed_response("the response has no logprobs object: the server did not return prompt "
                             "log-probabilities (llama-cpp-python needs --logits_all true)");
  const auto& lp = choice["logprobs"];
  if (!lp.contains("tokens") || !lp.contains("token_logprobs") || !lp.contains("text_offset") ||
      !lp["tokens"].is_array() || !lp["token_logprobs"].is_array() || !lp["text_offset"].is_array())
    throw malformed_response("the logprobs object lacks tokens, token_logprobs or text_offset arrays");
  const auto& tokens = lp["tokens"];
  const auto& logprobs = lp["token_logprobs"];
  const auto& offsets = lp["text_offset"];
  if (tokens.size() != logprobs.size() || tokens.size() != offsets.size())
    throw malformed_response("the logprobs arrays have different lengths");
  if (choice.contains("text") && choice["text"].is_string()) {
    const std::string& text = choice["text"].get_ref<const std::string&>();
    if (text.compare(0, sent.size(), sent) != 0)
      throw malformed_response("the response does not echo the prompt: the server ignored \"echo\": true");
  }
  const std::string_view prompt = sent.substr(prefix_bytes);
  const std::size_t boundary = code_points(prompt.substr(0, context_bytes));
  const std::size_t end = code_points(prompt);
  double sum = 0.0;
  std::size_t counted = 0;
  for (std::size_t i = 0; i < offsets.size(); ++i) {
    if (!offsets[i].is_number_integer()) throw malformed_response("a text_offset is not an integer");
    const auto offset = offsets[i].get<std::size_t>();
    if (offset >= end) break;  // generated tokens, past the echoed prompt
    const std::size_t next = i + 1 < offsets.size() && offsets[i + 1].is_number_integer()
                                 ? std::min(offsets[i + 1].get<std::size_t>(), end)
                                 : end;
    if (offset < boundary && next > boundary)
      throw error("the server's token " + tokens[i].dump() + " spans the end of the context and the start of "
                  "the continuation, so log P(continuation | context) is not defined on its tokens; start "
                  "the continuation with a space or end the context at a word boundary");
    if (offset < boundary) continue;
    if (logprobs[i].is_null())
      throw error("the continuation starts at the first token of the prompt, which has no log-probability; "
                  "give a non-empty context");
    if (!logprobs[i].is_number()) throw malformed_response("a token_logprobs entry is not a number");
    const double v = logprobs[i].get<double>();
    if (!std::isfinite(v) && !(std::isinf(v) && v < 0))
      throw malformed_response("a token log-probability is not a number");
    sum += v;
    ++counted;
  }
  if (counted == 0 && boundary < end)
    throw malformed_response("no returned token starts inside the continuation (text_offset does not cover the prompt)");
  return std::min(sum, 0.0);
}

}  // namespace remote_detail

/// A language model behind OpenAI-compatible HTTP servers. Models `language_model` and `scoring_model`.
///
/// Movable, not copyable. Thread-safe: `generate` and `score` may be called from several threads.
class remote_model {
 public:
  /// Builds the pool and, with `remote_scoring::echo_logprobs`, probes once: the first endpoint that
  /// answers must return prompt log-probabilities.
  /// @throws config_error for unusable options (see `endpoint_pool`).
  /// @throws remote_error when the probe fails: the server is down, or cannot return prompt log-probs.
  explicit remote_model(remote_options options)
      : options_(std::move(options)), pool_(std::make_unique<endpoint_pool>(options_.pool)) {
    if (options_.scoring == remote_scoring::echo_logprobs) probe_scoring();
  }

  /// Continues each prompt; one text per request, in order, cut before the first stop sequence.
  /// @throws remote_error when a request cannot be served (see `endpoint_pool::post_all`).
  std::vector<std::string> generate(std::span<const generation_request> requests) {
    std::vector<std::string> bodies;
    bodies.reserve(requests.size());
    for (const auto& r : requests) bodies.push_back(generation_body(r).dump());
    if (options_.api == remote_api::chat) {
      auto texts = pool_->post_all("/chat/completions", bodies, [](const nlohmann::json& j, std::size_t) {
        const auto& choice = first_choice(j);
        if (!choice.contains("message") || !choice["message"].is_object())
          throw malformed_response("a chat choice has no message object");
        const auto& content = choice["message"].value("content", nlohmann::json());
        if (content.is_null()) return std::string();
        if (!content.is_string()) throw malformed_response("a chat message's content is not a string");
        return content.get<std::string>();
      });
      for (std::size_t i = 0; i < texts.size(); ++i)
        texts[i] = remote_detail::cut_at_stop(std::move(texts[i]), requests[i].options.stop);
      return texts;
    }
    auto texts = pool_->post_all("/completions", bodies, [](const nlohmann::json& j, std::size_t) {
      const auto& choice = first_choice(j);
      if (!choice.contains("text") || !choice["text"].is_string())
        throw malformed_response("a completion choice has no text string");
      return choice["text"].get<std::string>();
    });
    for (std::size_t i = 0; i < texts.size(); ++i)
      texts[i] = remote_detail::cut_at_stop(std::move(texts[i]), requests[i].options.stop);
    return texts;
  }

  /// log P(continuation | context) for each request, in order; each <= 0.
  /// @throws config_error when the model was built with `remote_scoring::none`.
  /// @throws remote_error when a request cannot be served, or its boundary falls inside a token.
  std::vector<double> score(std::span<const scoring_request> requests) {
    if (options_.scoring == remote_scoring::none)
      throw config_error("remote_model: scoring is off (remote_options::scoring is none); use a server that "
                         "returns prompt log-probabilities and set scoring to echo_logprobs");
    std::vector<std::string> bodies;
    bodies.reserve(requests.size());
    for (const auto& r : requests) bodies.push_back(scoring_body(r).dump());
    return pool_->post_all("/completions", bodies, [&](const nlohmann::json& j, std::size_t i) {
      const auto& r = requests[i];
      return remote_detail::sum_continuation_logprobs(first_choice(j), options_.score_prefix + r.context + r.continuation,
                                                      options_.score_prefix.size(), r.context.size());
    });
  }

  [[nodiscard]] const remote_options& options() const noexcept { return options_; }
  /// The pool, for its statistics.
  [[nodiscard]] const endpoint_pool& pool() const noexcept { return *pool_; }

 private:
  static const nlohmann::json& first_choice(const nlohmann::json& j) {
    if (!j.is_object() || !j.contains("choices") || !j["choices"].is_array() || j["choices"].empty() ||
        !j["choices"][0].is_object())
      throw malformed_response("the response has no choices");
    return j["choices"][0];
  }

  nlohmann::json generation_body(const generation_request& r) const {
    const auto& o = r.options;
    nlohmann::json body = options_.extra_body.is_object() ? options_.extra_body : nlohmann::json::object();
    if (!options_.model.empty()) body["model"] = options_.model;
    if (options_.api == remote_api::chat) {
      nlohmann::json messages = nlohmann::json::array();
      if (r.messages.empty()) {
        messages.push_back({{"role", "user"}, {"content", r.prompt}});
      } else {
        for (const auto& m : r.messages)
          messages.push_back({{"role", remote_detail::role_name(m.role)}, {"content", m.content}});
      }
      body["messages"] = std::move(messages);
    } else {
      body["prompt"] = r.prompt;
    }
    body["max_tokens"] = o.max_new_tokens;
    body["temperature"] = o.temperature;
    body["top_p"] = o.top_p;
    if (o.top_k != 0 && options_.send_top_k) body["top_k"] = o.top_k;
    if (!o.stop.empty()) body["stop"] = o.stop;
    body["seed"] = o.seed % (std::uint64_t{1} << 31);
    body["n"] = 1;
    return body;
  }

  nlohmann::json scoring_body(const scoring_request& r) const {
    nlohmann::json body = options_.extra_body.is_object() ? options_.extra_body : nlohmann::json::object();
    if (!options_.model.empty()) body["model"] = options_.model;
    body["prompt"] = options_.score_prefix + r.context + r.continuation;
    body["max_tokens"] = 1;  // 0 means "no limit" to some servers
    body["temperature"] = 0.0;
    body["echo"] = true;
    body["logprobs"] = 1;
    body["n"] = 1;
    return body;
  }

  void probe_scoring() {
    const scoring_request probe{"The capital of France is", " Paris."};
    const std::string prompt = options_.score_prefix + probe.context + probe.continuation;
    // The first endpoint that answers decides; one that is down or failing passes the probe on.
    std::string url;
    std::string cause;
    bool answered = false;
    for (std::size_t e = 0; e < pool_->options().endpoints.size(); ++e) {
      url = pool_->options().endpoints[e].base_url;
      const auto response = pool_->post_once(e, "/completions", scoring_body(probe).dump());
      if (response.status == 0) {
        cause = "no response (" + response.transport_error + ")";
        continue;
      }
      if (response.status >= 500 || response.status == 429) {
        cause = "HTTP " + std::to_string(response.status) + ": " + response.body.substr(0, 200);
        continue;
      }
      answered = true;
      if (response.status != 200) {
        cause = "HTTP " + std::to_string(response.status) + ": " + response.body.substr(0, 200);
        break;
      }
      try {
        (void)remote_detail::sum_continuation_logprobs(first_choice(nlohmann::json::parse(response.body)), prompt,
                                                       options_.score_prefix.size(), probe.context.size());
        return;
      } catch (const std::exception& ex) {
        cause = ex.what();
        break;
      }
    }
    if (!answered)
      throw remote_error(url, "probe",
                         "the scoring probe found no endpoint that answers: every endpoint of the pool is down "
                         "or failing (last: " + cause + "); start the servers, or set remote_options::scoring "
                         "to none to build the model without the probe");
    throw remote_error(url, "probe",
                       "cannot score: the scoring probe (echo with logprobs on /completions) failed, so this "
                       "server cannot give log P(continuation | context); serve a model that returns prompt "
                       "log-probabilities (llama-cpp-python: --logits_all true; vLLM does) or set "
                       "remote_options::scoring to none. Cause: " + cause);
  }

  remote_options options_;
  std::unique_ptr<endpoint_pool> pool_;
};

CAI_ASSERT_SCORING_MODEL(remote_model);

}  // namespace cai
