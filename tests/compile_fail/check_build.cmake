# Runs one build of a compile_fail target and judges it. Called by CTest as
#   cmake -DBUILD_DIR=<dir> -DTARGET=<target> -DCONFIG=<config> -DMODE=fail|pass [-DSOURCE=<file.cpp>]
#         -P check_build.cmake
# MODE=fail: the build must fail, and every `// expect-error: <regex>` line of SOURCE must match one line
#            of the build's output (the regex is matched line by line; ';' in the output reads as ' ').
# MODE=pass: the build must succeed.
# A file that compiles when it must not, or fails for another reason, fails the test with the output.
cmake_minimum_required(VERSION 3.25)

foreach(_var BUILD_DIR TARGET MODE)
  if(NOT DEFINED ${_var})
    message(FATAL_ERROR "check_build.cmake: -D${_var}=... is required")
  endif()
endforeach()

set(_config_args)
if(DEFINED CONFIG AND NOT CONFIG STREQUAL "")
  set(_config_args --config "${CONFIG}")
endif()
execute_process(
  COMMAND "${CMAKE_COMMAND}" --build "${BUILD_DIR}" --target "${TARGET}" ${_config_args} --parallel 2
  OUTPUT_VARIABLE _output ERROR_VARIABLE _output RESULT_VARIABLE _result)

if(MODE STREQUAL "pass")
  if(NOT _result EQUAL 0)
    message(FATAL_ERROR "${TARGET} must compile, but the build failed (${_result}):\n${_output}")
  endif()
  message(STATUS "${TARGET} compiled, as it must")
  return()
endif()
if(NOT MODE STREQUAL "fail")
  message(FATAL_ERROR "check_build.cmake: MODE must be 'fail' or 'pass', not '${MODE}'")
endif()

if(_result EQUAL 0)
  message(FATAL_ERROR "${SOURCE} COMPILED, but it must not: the misuse it contains is no longer "
                      "rejected.\n${_output}")
endif()

file(STRINGS "${SOURCE}" _expectations REGEX "^// expect-error: ")
if(NOT _expectations)
  message(FATAL_ERROR "${SOURCE} has no '// expect-error: <regex>' line")
endif()
string(REPLACE ";" " " _flat "${_output}")
string(REGEX MATCHALL "[^\n]+" _lines "${_flat}")
foreach(_line IN LISTS _expectations)
  string(REGEX REPLACE "^// expect-error: " "" _regex "${_line}")
  set(_hit "")
  foreach(_out IN LISTS _lines)
    if(_out MATCHES "${_regex}")
      set(_hit "${_out}")
      break()
    endif()
  endforeach()
  if(_hit STREQUAL "")
    message(FATAL_ERROR "${TARGET} failed to compile, as it must, but no line of the output matches the "
                        "expected diagnostic\n  ${_regex}\nOutput:\n${_output}")
  endif()
  message(STATUS "expected diagnostic found: ${_hit}")
endforeach()
