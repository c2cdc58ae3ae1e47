# GGUF tests of the model_io area that are not Catch2 test cases; included by tests/CMakeLists.txt.
#
# "model_io: the GGUF reader agrees with gguf-py on SmolLM2": the program gguf_dump prints what
# cai::gguf_file reads from the SmolLM2 model (header, tensor infos, configuration, tokenizer metadata) and
# writes the dequantised values of chosen tensors; check_gguf_with_python.py compares all of it with
# gguf-py, values bit for bit. It exits 77 (skipped) when gguf or numpy cannot be imported or the model is
# absent from ${CAI_MODEL_CACHE} (scripts/fetch-smollm2 fetches it).

if(NOT TARGET cai_test_model_io)
  return()
endif()

add_executable(cai_model_io_gguf_dump "${CMAKE_CURRENT_LIST_DIR}/gguf_dump.cpp")
target_link_libraries(cai_model_io_gguf_dump PRIVATE cai::cai)
add_dependencies(cai_test_model_io cai_model_io_gguf_dump)  # building the area builds the dump program

if(CAI_PYTHON)
  set(_name "model_io: the GGUF reader agrees with gguf-py on SmolLM2")
  add_test(NAME "${_name}"
           COMMAND "${CAI_PYTHON}" "${CMAKE_CURRENT_LIST_DIR}/check_gguf_with_python.py"
                   "$<TARGET_FILE:cai_model_io_gguf_dump>" "${CMAKE_CURRENT_BINARY_DIR}/model_io_gguf_python"
                   "${CAI_MODEL_CACHE}/SmolLM2-135M-Instruct.Q4_1.gguf")
  set_tests_properties("${_name}" PROPERTIES SKIP_RETURN_CODE 77 LABELS "model_io;python")
else()
  message(STATUS "cai: no Python interpreter; the GGUF comparison with gguf-py is not registered")
endif()
