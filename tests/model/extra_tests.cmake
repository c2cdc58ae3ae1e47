# The comparison of cai's transformer with llama.cpp on the packaged SmolLM2 GGUF. It needs a Python that
# imports llama_cpp (PyPI llama-cpp-python), CAI_LLAMA_PYTHON (tests/CMakeLists.txt); skipped (77) otherwise.
add_executable(cai_model_logits ${CMAKE_CURRENT_LIST_DIR}/model_logits.cpp)
target_link_libraries(cai_model_logits PRIVATE cai::cai)
set(_py "${CAI_LLAMA_PYTHON}")
if(NOT _py)
  set(_py "${CAI_PYTHON}")
endif()
add_test(NAME "model: the SmolLM2 GGUF agrees with llama.cpp on the next token"
         COMMAND "${_py}" "${CMAKE_CURRENT_LIST_DIR}/compare_with_llamacpp.py" $<TARGET_FILE:cai_model_logits>
                 "${CAI_MODEL_CACHE}/SmolLM2-135M-Instruct.Q4_1.gguf")
set_tests_properties("model: the SmolLM2 GGUF agrees with llama.cpp on the next token" PROPERTIES
  SKIP_RETURN_CODE 77 LABELS "reference" TIMEOUT 600)

add_test(NAME "model: the SmolLM2 GGUF equals an independent fp32 numpy reference"
         COMMAND "${CAI_PYTHON}" "${CMAKE_CURRENT_LIST_DIR}/compare_with_numpy.py" $<TARGET_FILE:cai_model_logits>
                 "${CAI_MODEL_CACHE}/SmolLM2-135M-Instruct.Q4_1.gguf")
set_tests_properties("model: the SmolLM2 GGUF equals an independent fp32 numpy reference" PROPERTIES
  SKIP_RETURN_CODE 77 LABELS "reference" TIMEOUT 600)
