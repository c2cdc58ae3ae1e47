// with_threads(n, f): f() with OpenMP limited to n threads, the setting restored after; f() alone when
// cai is built without OpenMP. Shared by the backend tests that compare one thread with two.
#pragma once

#if defined(_OPENMP)
#include <omp.h>
#endif

namespace cai_test {

template <class F>
auto with_threads(int n, F f) {
#if defined(_OPENMP)
  const int before = omp_get_max_threads();
  omp_set_num_threads(n);
  auto r = f();
  omp_set_num_threads(before);
  return r;
#else
  (void)n;
  return f();
#endif
}

}  // namespace cai_test
