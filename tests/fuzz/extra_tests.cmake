# The fuzz run: builds the libFuzzer targets with clang++-16 in the build tree and runs each briefly on its
# seed corpus (CAI_FUZZ_SECONDS, default 10). Skipped when clang++-16 is absent.
add_test(NAME "fuzz: every libFuzzer target runs clean on its seed corpus"
         COMMAND bash "${CMAKE_CURRENT_LIST_DIR}/run_fuzzers.sh" "${CMAKE_CURRENT_BINARY_DIR}/fuzz-work")
set_tests_properties("fuzz: every libFuzzer target runs clean on its seed corpus" PROPERTIES
  SKIP_RETURN_CODE 77 TIMEOUT 900 LABELS "fuzz" PROCESSORS 2)
