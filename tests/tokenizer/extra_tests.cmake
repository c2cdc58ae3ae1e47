# Tokenizer checks that need Python with Hugging Face `tokenizers` (pip install tokenizers). Two run the
# Catch2 executable's hidden cases (which write cai's ids to a folder) and compare in Python; one checks
# the Unicode tables. They run with CAI_PYTHON (tests/CMakeLists.txt: scripts/setup's virtual environment,
# else python3); each exits 77 (skipped) when the package is missing; none is added without a Python.
if(TARGET cai_test_tokenizer AND CAI_PYTHON)
  set(_tok_dir ${CMAKE_CURRENT_SOURCE_DIR}/tokenizer)
  set(_tok_work ${CMAKE_CURRENT_BINARY_DIR}/tokenizer-hf-check)
  add_test(NAME "tokenizer: trained tokenizer.json loads in HF tokenizers and encodes identically"
           COMMAND "${CAI_PYTHON}" ${_tok_dir}/check_trained_with_hf.py $<TARGET_FILE:cai_test_tokenizer> ${_tok_work}/trained)
  add_test(NAME "tokenizer: random texts encode as HF tokenizers does"
           COMMAND "${CAI_PYTHON}" ${_tok_dir}/fuzz_with_hf.py $<TARGET_FILE:cai_test_tokenizer> ${_tok_work}/fuzz)
  add_test(NAME "tokenizer: Unicode tables agree with the HF regex engine"
           COMMAND "${CAI_PYTHON}" ${_tok_dir}/check_unicode_with_hf.py)
  set_tests_properties("tokenizer: trained tokenizer.json loads in HF tokenizers and encodes identically"
                       "tokenizer: random texts encode as HF tokenizers does"
                       "tokenizer: Unicode tables agree with the HF regex engine"
                       PROPERTIES SKIP_RETURN_CODE 77)
endif()
