# Tests of the model_io area that are not Catch2 test cases; included by tests/CMakeLists.txt.
#
# "model_io: a file written by save_safetensors is read back by the Python safetensors package": the
# program write_safetensors_for_python writes an F32 file with cai::save_safetensors, and
# check_safetensors_with_python.py reads it with the reference implementation (PyPI safetensors + numpy),
# compares values and metadata, and checks that the reference writer gives the same bytes. Without those
# packages the script exits 77 and CTest reports the test as skipped.

if(NOT TARGET cai_test_model_io)
  return()
endif()

add_executable(cai_model_io_write_safetensors "${CMAKE_CURRENT_LIST_DIR}/write_safetensors_for_python.cpp")
target_link_libraries(cai_model_io_write_safetensors PRIVATE cai::cai)
# Building the area's test executable builds the writer too.
add_dependencies(cai_test_model_io cai_model_io_write_safetensors)

if(CAI_PYTHON)  # tests/CMakeLists.txt: scripts/setup's virtual environment, else python3
  set(_name "model_io: a file written by save_safetensors is read back by the Python safetensors package")
  add_test(NAME "${_name}"
           COMMAND "${CAI_PYTHON}" "${CMAKE_CURRENT_LIST_DIR}/check_safetensors_with_python.py"
                   "$<TARGET_FILE:cai_model_io_write_safetensors>"
                   "${CMAKE_CURRENT_BINARY_DIR}/model_io_python")
  set_tests_properties("${_name}" PROPERTIES SKIP_RETURN_CODE 77 LABELS "model_io;python")
else()
  message(STATUS "cai: no Python interpreter; the safetensors round-trip test with Python is not registered")
endif()
