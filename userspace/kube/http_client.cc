// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "kube/http_client.h"

#include <curl/curl.h>

#include <memory>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace ferry::kube {
namespace {

void globalInit() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

struct Transfer {
  CURL* easy = nullptr;
  const std::function<bool(std::string_view)>* on_data = nullptr;
  HttpResponse response;
  bool stopped_by_reader = false;
};

size_t onWrite(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const size_t len = size * n;
  long status = 0;
  curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
  // Error answers (410, 403, ...) are short Status objects the caller wants whole.
  if (t->on_data != nullptr && status >= 200 && status < 300) {
    if (!(*t->on_data)(std::string_view(data, len))) {
      t->stopped_by_reader = true;
      return 0;  // makes curl abort the transfer with CURLE_WRITE_ERROR
    }
    return len;
  }
  t->response.body.append(data, len);
  return len;
}

struct CurlSlist {
  curl_slist* list = nullptr;
  ~CurlSlist() { curl_slist_free_all(list); }
  void add(const std::string& s) { list = curl_slist_append(list, s.c_str()); }
};

void setBlob(CURL* easy, CURLoption opt, const std::string& pem) {
  curl_blob blob{const_cast<char*>(pem.data()), pem.size(), CURL_BLOB_COPY};
  curl_easy_setopt(easy, opt, &blob);
}

}  // namespace

void CancelToken::cancel() {
  cancelled_.store(true);
  std::lock_guard<std::mutex> lock(mu_);
  if (multi_ != nullptr) {
    curl_multi_wakeup(static_cast<CURLM*>(multi_));
  }
}

void CancelToken::attach(void* multi) {
  std::lock_guard<std::mutex> lock(mu_);
  multi_ = multi;
}

void CancelToken::detach() {
  std::lock_guard<std::mutex> lock(mu_);
  multi_ = nullptr;
}

HttpClient::HttpClient(KubeConfig config) : config_(std::move(config)) {
  globalInit();
}

absl::StatusOr<HttpResponse> HttpClient::request(const std::string& method, const std::string& path,
                                                 const std::string& body,
                                                 CancelToken* cancel) const {
  return perform(method, path, body, nullptr, cancel);
}

absl::StatusOr<HttpResponse> HttpClient::stream(
    const std::string& path, const std::function<bool(std::string_view)>& on_data,
    CancelToken* cancel) const {
  return perform("GET", path, "", &on_data, cancel);
}

absl::StatusOr<HttpResponse> HttpClient::perform(
    const std::string& method, const std::string& path, const std::string& body,
    const std::function<bool(std::string_view)>* on_data, CancelToken* cancel) const {
  if (cancel != nullptr && cancel->cancelled()) {
    return absl::CancelledError("request cancelled");
  }
  std::unique_ptr<CURL, decltype(&curl_easy_cleanup)> easy(curl_easy_init(), curl_easy_cleanup);
  std::unique_ptr<CURLM, decltype(&curl_multi_cleanup)> multi(curl_multi_init(),
                                                              curl_multi_cleanup);
  if (!easy || !multi) {
    return absl::ResourceExhaustedError("libcurl could not allocate a handle");
  }
  Transfer t;
  t.easy = easy.get();
  t.on_data = on_data;
  const std::string url = config_.server + path;
  CURL* e = easy.get();
  curl_easy_setopt(e, CURLOPT_URL, url.c_str());
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, onWrite);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, &t);
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
  // A watch is silent between events; keepalive notices a peer that vanished without a FIN.
  curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(e, CURLOPT_TCP_KEEPIDLE, 30L);
  curl_easy_setopt(e, CURLOPT_TCP_KEEPINTVL, 10L);
  if (!config_.ca_pem.empty()) {
    setBlob(e, CURLOPT_CAINFO_BLOB, config_.ca_pem);
  }
  if (config_.insecure_skip_tls_verify) {
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
  }
  if (!config_.client_cert_pem.empty()) {
    curl_easy_setopt(e, CURLOPT_SSLCERTTYPE, "PEM");
    setBlob(e, CURLOPT_SSLCERT_BLOB, config_.client_cert_pem);
    curl_easy_setopt(e, CURLOPT_SSLKEYTYPE, "PEM");
    setBlob(e, CURLOPT_SSLKEY_BLOB, config_.client_key_pem);
  }
  CurlSlist headers;
  headers.add("Accept: application/json");
  std::string token = config_.token;
  if (!config_.token_file.empty()) {
    if (auto fresh = readFile(config_.token_file); fresh.ok()) {
      token = std::string(absl::StripAsciiWhitespace(*fresh));
    }
  }
  if (!token.empty()) {
    headers.add("Authorization: Bearer " + token);
  }
  if (method != "GET") {
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method.c_str());
  }
  if (!body.empty()) {
    headers.add("Content-Type: application/json");
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, body.data());
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, static_cast<long>(body.size()));
  }
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, headers.list);

  curl_multi_add_handle(multi.get(), e);
  if (cancel != nullptr) {
    cancel->attach(multi.get());
  }
  int running = 1;
  CURLcode result = CURLE_OK;
  bool cancelled = false;
  while (true) {
    if (cancel != nullptr && cancel->cancelled()) {
      cancelled = true;
      break;
    }
    CURLMcode mc = curl_multi_perform(multi.get(), &running);
    if (mc != CURLM_OK) {
      result = CURLE_FAILED_INIT;
      break;
    }
    if (running == 0) {
      int left = 0;
      while (CURLMsg* msg = curl_multi_info_read(multi.get(), &left)) {
        if (msg->msg == CURLMSG_DONE) {
          result = msg->data.result;
        }
      }
      break;
    }
    curl_multi_poll(multi.get(), nullptr, 0, 1000, nullptr);
  }
  if (cancel != nullptr) {
    cancel->detach();
  }
  curl_multi_remove_handle(multi.get(), e);
  if (cancelled) {
    return absl::CancelledError("request cancelled");
  }
  curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &t.response.status);
  if (result != CURLE_OK && !(result == CURLE_WRITE_ERROR && t.stopped_by_reader)) {
    return absl::UnavailableError(absl::StrCat(method, " ", url, ": ", curl_easy_strerror(result)));
  }
  return std::move(t.response);
}

}  // namespace ferry::kube
