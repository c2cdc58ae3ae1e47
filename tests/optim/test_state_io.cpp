// Tests of the save/load members of sgd::state and adamw::state (format: cai/train/detail/state_io.hpp):
// a round trip is bit exact and training resumed from it gives the same bits as uninterrupted training;
// truncated streams, other optimizers, other value types and other sizes are refused with clear errors
// and leave the state unchanged.
#include <catch2/catch_template_test_macros.hpp>
#include <catch2/catch_test_macros.hpp>
#include <catch2/matchers/catch_matchers_exception.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

#include <cstdint>
#include <cstring>
#include <sstream>
#include <string>
#include <vector>

#include "cai/error.hpp"
#include "cai/train/adamw.hpp"
#include "cai/train/sgd.hpp"

namespace {

template <class T>
std::vector<T> gradient(std::size_t n, std::size_t step) {
  std::vector<T> g(n);
  for (std::size_t i = 0; i < n; ++i) g[i] = static_cast<T>(double((i * 11 + step * 5) % 13) / 6.5 - 1.0 + 1e-3 * i);
  return g;
}

template <class T>
std::vector<T> initial(std::size_t n) {
  std::vector<T> theta(n);
  for (std::size_t i = 0; i < n; ++i) theta[i] = static_cast<T>(double(i % 9) / 4.5 - 1.0 + 1e-4 * i);
  return theta;
}

template <class S, class T>
void train(S& s, std::vector<T>& theta, std::size_t from, std::size_t to) {
  for (std::size_t step = from; step < to; ++step) s.update(theta, gradient<T>(theta.size(), step));
}

template <class T>
bool same_bits(std::span<const T> a, std::span<const T> b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0);
}

template <class S>
std::string saved(const S& s) {
  std::ostringstream out(std::ios::binary);
  s.save(out);
  return out.str();
}

}  // namespace

TEMPLATE_TEST_CASE("an adamw state saved and loaded resumes training bit for bit", "[optim][state_io]", float,
                   double) {
  using T = TestType;
  const std::size_t n = 300;
  for (const bool amsgrad : {false, true}) {
    CAPTURE(amsgrad);
    const cai::adamw opt{.learning_rate = 0.01f, .weight_decay = 0.1f, .amsgrad = amsgrad};
    auto theta = initial<T>(n);
    cai::adamw::state<std::vector<T>> s(opt, theta);
    train(s, theta, 0, 5);
    const std::string bytes = saved(s);

    auto resumed_theta = theta;
    cai::adamw::state<std::vector<T>> resumed(opt, resumed_theta);
    std::istringstream in(bytes, std::ios::binary);
    resumed.load(in);
    REQUIRE(in.tellg() == static_cast<std::streamoff>(bytes.size()));  // it reads exactly what save wrote
    REQUIRE(resumed.steps() == 5);
    REQUIRE(same_bits(resumed.first_moment(), s.first_moment()));
    REQUIRE(same_bits(resumed.second_moment(), s.second_moment()));
    REQUIRE(same_bits(resumed.max_second_moment(), s.max_second_moment()));
    REQUIRE(saved(resumed) == bytes);

    train(s, theta, 5, 9);
    train(resumed, resumed_theta, 5, 9);
    REQUIRE(same_bits(std::span<const T>(resumed_theta), std::span<const T>(theta)));
  }
}

TEMPLATE_TEST_CASE("an sgd state saved and loaded resumes training bit for bit", "[optim][state_io]", float,
                   double) {
  using T = TestType;
  const std::size_t n = 77;
  const cai::sgd opt{.learning_rate = 0.05f, .momentum = 0.9f, .nesterov = true, .weight_decay = 1e-3f};
  auto theta = initial<T>(n);
  cai::sgd::state<std::vector<T>> s(opt, theta);
  train(s, theta, 0, 3);
  const std::string bytes = saved(s);

  auto resumed_theta = theta;
  cai::sgd::state<std::vector<T>> resumed(opt, resumed_theta);
  std::istringstream in(bytes, std::ios::binary);
  resumed.load(in);
  REQUIRE(resumed.steps() == 3);
  REQUIRE(same_bits(resumed.velocity(), s.velocity()));
  train(s, theta, 3, 6);
  train(resumed, resumed_theta, 3, 6);
  REQUIRE(same_bits(std::span<const T>(resumed_theta), std::span<const T>(theta)));
}

TEST_CASE("a fresh state round trips with empty buffers", "[optim][state_io]") {
  const cai::adamw opt;
  const cai::sgd plain;
  std::vector<float> theta(10, 1.0f);
  cai::adamw::state<std::vector<float>> a(opt, theta);
  cai::sgd::state<std::vector<float>> s(plain, theta);
  cai::adamw::state<std::vector<float>> a2(opt, theta);
  cai::sgd::state<std::vector<float>> s2(plain, theta);
  std::istringstream ain(saved(a)), sin(saved(s));
  a2.load(ain);
  s2.load(sin);
  REQUIRE(a2.steps() == 0);
  REQUIRE(a2.first_moment().empty());
  REQUIRE(s2.velocity().empty());
}

TEST_CASE("the saved format starts with a magic tag version kind and sizes", "[optim][state_io]") {
  const cai::sgd opt{.momentum = 0.5f};
  std::vector<float> theta{1.0f, 2.0f};
  cai::sgd::state<std::vector<float>> s(opt, theta);
  s.update(theta, {0.5f, -0.25f});
  const std::string bytes = saved(s);
  // magic 8, version 4, kind length 4 + "sgd" 3, value bytes 4, steps 8, size 8, buffers 4, length 8, 2 floats
  REQUIRE(bytes.size() == 8 + 4 + 4 + 3 + 4 + 8 + 8 + 4 + 8 + 2 * 4);
  REQUIRE(bytes.substr(0, 8) == "CAIOPTST");
  REQUIRE(bytes.substr(16, 3) == "sgd");
  REQUIRE(static_cast<unsigned char>(bytes[8]) == 1);   // version 1, little-endian
  REQUIRE(static_cast<unsigned char>(bytes[19]) == 4);  // float
  REQUIRE(static_cast<unsigned char>(bytes[23]) == 1);  // one step
}

TEST_CASE("the states of several parameters follow one another in one stream", "[optim][state_io]") {
  const cai::adamw opt;
  std::vector<float> a{1.0f, 2.0f, 3.0f};
  std::vector<double> b{-1.0, 0.5};
  cai::adamw::state<std::vector<float>> sa(opt, a);
  cai::adamw::state<std::vector<double>> sb(opt, b);
  sa.update(a, {0.1f, 0.2f, 0.3f});
  sb.update(b, {1.0, -1.0});
  sb.update(b, {0.5, 0.5});
  std::stringstream stream(std::ios::in | std::ios::out | std::ios::binary);
  sa.save(stream);
  sb.save(stream);
  cai::adamw::state<std::vector<float>> ra(opt, a);
  cai::adamw::state<std::vector<double>> rb(opt, b);
  ra.load(stream);
  rb.load(stream);
  REQUIRE(ra.steps() == 1);
  REQUIRE(rb.steps() == 2);
  REQUIRE(same_bits(rb.second_moment(), sb.second_moment()));
}

TEST_CASE("a truncated optimizer state throws an io error and leaves the state unchanged", "[optim][state_io]") {
  const cai::adamw opt{.amsgrad = true};
  std::vector<float> theta{1.0f, 2.0f, 3.0f};
  cai::adamw::state<std::vector<float>> s(opt, theta);
  s.update(theta, {0.1f, 0.2f, 0.3f});
  const std::string bytes = saved(s);

  cai::adamw::state<std::vector<float>> target(opt, theta);
  for (std::size_t cut = 0; cut < bytes.size(); ++cut) {
    CAPTURE(cut);
    std::istringstream in(bytes.substr(0, cut));
    REQUIRE_THROWS_AS(target.load(in, "checkpoint/optimizer.bin"), cai::io_error);
    REQUIRE(target.steps() == 0);
    REQUIRE(target.first_moment().empty());
  }
  std::istringstream in(bytes.substr(0, bytes.size() - 1));
  REQUIRE_THROWS_MATCHES(target.load(in, "checkpoint/optimizer.bin"), cai::io_error,
                         Catch::Matchers::MessageMatches(Catch::Matchers::StartsWith("checkpoint/optimizer.bin: ") &&
                                                         Catch::Matchers::ContainsSubstring("the checkpoint is truncated")));
}

TEST_CASE("loading another optimizer's state throws a validation error naming both", "[optim][state_io]") {
  const cai::sgd plain{.momentum = 0.9f};
  const cai::adamw opt;
  std::vector<float> theta{1.0f, 2.0f};
  cai::sgd::state<std::vector<float>> s(plain, theta);
  s.update(theta, {1.0f, 1.0f});
  cai::adamw::state<std::vector<float>> a(opt, theta);
  std::istringstream in(saved(s));
  REQUIRE_THROWS_MATCHES(a.load(in), cai::validation_error,
                         Catch::Matchers::MessageMatches(Catch::Matchers::ContainsSubstring(
                             "the stream holds the state of a cai::sgd optimizer, not of a cai::adamw")));
  REQUIRE(a.steps() == 0);
}

TEST_CASE("loading a state of another size or value type throws a validation error", "[optim][state_io]") {
  const cai::adamw opt;
  std::vector<float> three{1.0f, 2.0f, 3.0f};
  cai::adamw::state<std::vector<float>> s(opt, three);
  s.update(three, {1.0f, 1.0f, 1.0f});
  const std::string bytes = saved(s);

  std::vector<float> four{1.0f, 2.0f, 3.0f, 4.0f};
  cai::adamw::state<std::vector<float>> other_size(opt, four);
  std::istringstream in_size(bytes);
  REQUIRE_THROWS_MATCHES(other_size.load(in_size), cai::validation_error,
                         Catch::Matchers::MessageMatches(Catch::Matchers::ContainsSubstring(
                             "a parameter of 3 elements but this state is for 4 elements")));

  std::vector<double> doubles{1.0, 2.0, 3.0};
  cai::adamw::state<std::vector<double>> other_type(opt, doubles);
  std::istringstream in_type(bytes);
  REQUIRE_THROWS_MATCHES(other_type.load(in_type), cai::validation_error,
                         Catch::Matchers::MessageMatches(Catch::Matchers::ContainsSubstring(
                             "the stream holds float values but this state holds double values")));
  REQUIRE(other_type.steps() == 0);
}

TEST_CASE("a stream that is not an optimizer state or has another version throws an io error",
          "[optim][state_io]") {
  const cai::sgd opt;
  std::vector<double> theta{1.0};
  cai::sgd::state<std::vector<double>> s(opt, theta);
  std::istringstream text("{\"not\": \"a state\"}");
  REQUIRE_THROWS_MATCHES(s.load(text), cai::io_error,
                         Catch::Matchers::MessageMatches(Catch::Matchers::ContainsSubstring(
                             "this is not a cai optimizer state")));
  std::string bytes = saved(s);
  bytes[8] = 7;  // version 7
  std::istringstream future(bytes);
  REQUIRE_THROWS_MATCHES(s.load(future), cai::io_error,
                         Catch::Matchers::MessageMatches(Catch::Matchers::ContainsSubstring(
                             "format version 7 but this cai reads version 1")));
}

TEST_CASE("a corrupt buffer length throws a validation error", "[optim][state_io]") {
  const cai::sgd opt{.momentum = 0.5f};
  std::vector<float> theta{1.0f, 2.0f};
  cai::sgd::state<std::vector<float>> s(opt, theta);
  s.update(theta, {1.0f, 1.0f});
  std::string bytes = saved(s);
  bytes[8 + 4 + 4 + 3 + 4 + 8 + 8 + 4] = 1;  // the momentum buffer claims 1 element
  std::istringstream in(bytes);
  REQUIRE_THROWS_MATCHES(s.load(in), cai::validation_error,
                         Catch::Matchers::MessageMatches(Catch::Matchers::ContainsSubstring(
                             "the momentum buffer has 1 elements but the parameter has 2")));
  REQUIRE(s.steps() == 1);
}

TEST_CASE("saving to a failed stream throws an io error", "[optim][state_io]") {
  const cai::adamw opt;
  std::vector<float> theta{1.0f};
  cai::adamw::state<std::vector<float>> s(opt, theta);
  std::ostringstream out;
  out.setstate(std::ios::badbit);
  REQUIRE_THROWS_MATCHES(s.save(out), cai::io_error,
                         Catch::Matchers::MessageMatches(Catch::Matchers::ContainsSubstring(
                             "cai::adamw::state::save: writing the optimizer state failed")));
}

TEST_CASE("an adamw state that claims steps without moments throws a validation error", "[optim][state_io]") {
  const cai::adamw opt;
  std::vector<float> theta{1.0f, 2.0f};
  cai::adamw::state<std::vector<float>> s(opt, theta);
  std::string bytes = saved(s);
  bytes[8 + 4 + 4 + 5 + 4] = 3;  // the step count of a fresh state (no moments yet) set to 3
  std::istringstream in(bytes);
  REQUIRE_THROWS_MATCHES(s.load(in), cai::validation_error,
                         Catch::Matchers::MessageMatches(Catch::Matchers::ContainsSubstring(
                             "the state has taken 3 steps but holds no moments")));
  REQUIRE(s.steps() == 0);
}
