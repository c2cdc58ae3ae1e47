// test: a backend without storage is rejected with a message naming storage
// expect-error: static.assert(ion)? failed.*a backend needs a member alias template 'storage<T>'
#include <string_view>
#include <vector>

#include <cai/concepts.hpp>

struct abacus_t {
  static constexpr std::string_view name = "abacus";
#if CAI_COMPILE_FAIL_FIXED
  template <class T>
  using storage = std::vector<T>;
#endif
};

CAI_ASSERT_BACKEND(abacus_t);
