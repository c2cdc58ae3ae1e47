// A program that uses cai through an installed package: includes a few headers, checks a concept and
// draws from the generator. Prints "cai consumer (<how>): OK ..." on success.
#include <cstdio>

#include <cai/backend/tags.hpp>
#include <cai/concepts.hpp>
#include <cai/config.hpp>
#include <cai/random.hpp>

#ifndef CAI_CONSUMER_HOW
#define CAI_CONSUMER_HOW "unknown"
#endif

static_assert(cai::backend<cai::cpu_t>, "cai::cpu_t must model cai::backend");

int main() {
  cai::rng a(42);
  cai::rng b(42);
  const auto first = a();
  if (first != b()) {
    std::puts("cai consumer: FAILED, cai::rng(42) is not deterministic");
    return 1;
  }
#ifdef CAI_HAS_CUDA
  const char* cuda = "with cai::cuda";
#else
  const char* cuda = "without cai::cuda";
#endif
  std::printf("cai consumer (%s): OK, cai %s, %s, rng(42) first draw %llu\n", CAI_CONSUMER_HOW,
              CAI_VERSION_STRING, cuda, static_cast<unsigned long long>(first));
  return 0;
}
