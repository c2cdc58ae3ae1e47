/// @file remote/detail/http.hpp
/// A minimal blocking HTTP client over libcurl's easy interface: one POST or GET with a JSON body, a
/// whole-transfer timeout and a connect timeout, returning the status, the body and the Retry-After
/// header. Private to `cai/remote/`: the pool calls it from several threads at once. Each thread keeps
/// one easy handle (reset between requests), so that its connections to a server are kept alive and
/// reused, which spares a TCP (and TLS) handshake per request; curl's global initialisation runs once,
/// thread-safely, on first use. Nothing here logs: the headers, which may carry an API key, are never
/// printed or kept.
#pragma once

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <curl/curl.h>

namespace cai::remote_detail {

/// What one HTTP exchange gave: either a transport failure (`transport_error` set, the rest unset) or a
/// status with its body.
struct http_response {
  long status = 0;                     ///< HTTP status; 0 when the transport failed
  std::string body;
  std::optional<double> retry_after;   ///< seconds, from a numeric Retry-After header
  std::string transport_error;         ///< curl's reason when no complete response came back
  bool timed_out = false;              ///< the transport failure was a timeout
};

/// One HTTP request to send.
struct http_request {
  std::string url;
  std::string body;                    ///< empty with `post == false`
  bool post = true;
  std::vector<std::string> headers;    ///< "Name: value" lines, sent as they are
  std::chrono::milliseconds timeout{60000};
  std::chrono::milliseconds connect_timeout{5000};
};

inline void curl_global_once() {
  static const bool initialised = [] {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    return true;
  }();
  (void)initialised;
}

inline std::size_t write_body(char* data, std::size_t size, std::size_t count, void* user) {
  static_cast<std::string*>(user)->append(data, size * count);
  return size * count;
}

inline std::size_t read_header(char* data, std::size_t size, std::size_t count, void* user) {
  const std::size_t n = size * count;
  std::string line(data, n);
  auto* out = static_cast<std::optional<double>*>(user);
  constexpr std::string_view name = "retry-after:";
  if (line.size() > name.size()) {
    bool match = true;
    for (std::size_t i = 0; i < name.size() && match; ++i)
      match = static_cast<char>(std::tolower(static_cast<unsigned char>(line[i]))) == name[i];
    if (match) {
      try {
        *out = std::stod(line.substr(name.size()));
      } catch (...) {  // an HTTP date, or garbage: ignored, the pool's own back-off applies
      }
    }
  }
  return n;
}

/// The calling thread's easy handle, reset to its defaults but keeping its live connections.
inline CURL* thread_handle() {
  struct holder {
    CURL* handle = nullptr;
    ~holder() {
      if (handle != nullptr) curl_easy_cleanup(handle);
    }
  };
  thread_local holder h;
  if (h.handle == nullptr) h.handle = curl_easy_init();
  else curl_easy_reset(h.handle);
  return h.handle;
}

/// Sends `request` and waits for the whole response (at most `request.timeout`).
/// Never throws for network trouble: failures come back in `transport_error`.
inline http_response send(const http_request& request) {
  curl_global_once();
  http_response response;
  CURL* curl = thread_handle();
  if (curl == nullptr) {
    response.transport_error = "curl_easy_init failed";
    return response;
  }
  curl_slist* headers = nullptr;
  for (const auto& h : request.headers) headers = curl_slist_append(headers, h.c_str());
  if (request.post) headers = curl_slist_append(headers, "Content-Type: application/json");
  headers = curl_slist_append(headers, "Expect:");  // no 100-continue round trip

  char error_buffer[CURL_ERROR_SIZE] = {0};
  curl_easy_setopt(curl, CURLOPT_URL, request.url.c_str());
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);  // threads: no SIGALRM for timeouts
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  if (request.post) {
    curl_easy_setopt(curl, CURLOPT_POST, 1L);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, request.body.c_str());
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(request.body.size()));
  }
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, static_cast<long>(std::max<long long>(1, request.timeout.count())));
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS,
                   static_cast<long>(std::max<long long>(1, request.connect_timeout.count())));
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, &write_body);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &response.body);
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, &read_header);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, &response.retry_after);
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, error_buffer);
  curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);

  const CURLcode code = curl_easy_perform(curl);
  if (code == CURLE_OK) {
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &response.status);
  } else {
    response.status = 0;
    response.timed_out = code == CURLE_OPERATION_TIMEDOUT;
    response.transport_error = error_buffer[0] != 0 ? std::string(error_buffer) : curl_easy_strerror(code);
    response.body.clear();
  }
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, nullptr);  // the list is freed now; the handle lives on
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, nullptr);
  curl_slist_free_all(headers);
  return response;
}

}  // namespace cai::remote_detail
