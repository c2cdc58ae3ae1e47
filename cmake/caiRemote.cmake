# cai::remote: the target for cai/remote/ (remote_model over OpenAI-compatible HTTP servers): cai::cai
# plus libcurl (Debian: libcurl4-openssl-dev). Defined only when libcurl is found; the rest of cai does
# not need it. It is an IMPORTED GLOBAL interface target, so that it is visible to a project that pulls
# cai in with add_subdirectory without being a build target of cai's own, and it is not exported:
# caiConfig.cmake defines the same target for an installed cai when it finds libcurl.
find_package(CURL QUIET GLOBAL)
if(CURL_FOUND)
  add_library(cai::remote INTERFACE IMPORTED GLOBAL)
  target_link_libraries(cai::remote INTERFACE cai::cai CURL::libcurl)
  message(STATUS "cai: libcurl found (${CURL_VERSION_STRING}); cai::remote is available")
else()
  message(STATUS "cai: libcurl not found; cai::remote is not defined (install libcurl4-openssl-dev)")
endif()
