# One "headers:" test: the header says `#pragma once`, and its generated translation unit (which includes
# it twice) compiles. Called by CTest as
#   cmake -DHEADER=<path> -DBUILD_DIR=<dir> -DTARGET=<target> [-DCONFIG=<config>] -P check_header.cmake
# The text check runs here rather than at configure time so that it sees the header as it is now.
cmake_minimum_required(VERSION 3.25)

file(STRINGS "${HEADER}" _pragma REGEX "^[ \t]*#[ \t]*pragma[ \t]+once")
if(NOT _pragma)
  message(FATAL_ERROR "${HEADER} has no '#pragma once' line: every public header starts with one")
endif()

set(_config_args)
if(DEFINED CONFIG AND NOT CONFIG STREQUAL "")
  set(_config_args --config "${CONFIG}")
endif()
execute_process(COMMAND "${CMAKE_COMMAND}" --build "${BUILD_DIR}" --target "${TARGET}" ${_config_args}
                OUTPUT_VARIABLE _output ERROR_VARIABLE _output RESULT_VARIABLE _result)
if(NOT _result EQUAL 0)
  message(FATAL_ERROR "${HEADER} does not compile on its own (included twice, alone in a translation "
                      "unit): include what it uses.\n${_output}")
endif()
message(STATUS "${HEADER} compiles alone")
if(_output MATCHES "warning:")
  message(STATUS "with warnings:\n${_output}")
endif()
