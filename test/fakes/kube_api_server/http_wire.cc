// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "fakes/kube_api_server/http_wire.h"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "http/status.h"

namespace ferry::fakes::wire {
namespace {

constexpr size_t kMaxHeader = 64 * 1024;
constexpr size_t kMaxBody = 16 * 1024 * 1024;

std::string percentDecode(absl::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size()) {
      auto hex = [](char c) {
        return c >= '0' && c <= '9'   ? c - '0'
               : c >= 'a' && c <= 'f' ? c - 'a' + 10
               : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                      : -1;
      };
      const int hi = hex(s[i + 1]), lo = hex(s[i + 2]);
      if (hi >= 0 && lo >= 0) {
        out.push_back(static_cast<char>(hi * 16 + lo));
        i += 2;
        continue;
      }
    }
    out.push_back(s[i] == '+' ? ' ' : s[i]);
  }
  return out;
}

bool readMore(int fd, std::string& buffer) {
  char tmp[16384];
  while (true) {
    ssize_t n = ::recv(fd, tmp, sizeof(tmp), 0);
    if (n > 0) {
      buffer.append(tmp, static_cast<size_t>(n));
      return true;
    }
    if (n < 0 && errno == EINTR) {
      continue;
    }
    return false;
  }
}

// A chunked request body (kubectl streams files it reads with -f that way).
bool readChunkedBody(int fd, std::string& buffer, std::string& body) {
  body.clear();
  while (true) {
    size_t eol;
    while ((eol = buffer.find("\r\n")) == std::string::npos) {
      if (buffer.size() > kMaxHeader || !readMore(fd, buffer)) {
        return false;
      }
    }
    const std::string size_line = buffer.substr(0, buffer.find_first_of(";\r"));
    size_t size = 0;
    if (!absl::SimpleHexAtoi(size_line, &size) || body.size() + size > kMaxBody) {
      return false;
    }
    while (buffer.size() < eol + 2 + size + 2) {
      if (!readMore(fd, buffer)) {
        return false;
      }
    }
    body.append(buffer, eol + 2, size);
    buffer.erase(0, eol + 2 + size + 2);
    if (size == 0) {
      return true;  // no trailers expected from Kubernetes clients
    }
  }
}

}  // namespace

bool readRequest(int fd, std::string& buffer, FakeApiServer::Request& req) {
  size_t end;
  while ((end = buffer.find("\r\n\r\n")) == std::string::npos) {
    if (buffer.size() > kMaxHeader || !readMore(fd, buffer)) {
      return false;
    }
  }
  std::vector<std::string> lines = absl::StrSplit(buffer.substr(0, end), "\r\n");
  buffer.erase(0, end + 4);
  std::vector<std::string> first = absl::StrSplit(lines[0], ' ');
  if (first.size() != 3) {
    return false;
  }
  req = FakeApiServer::Request{};
  req.method = first[0];
  const std::string& target = first[1];
  const size_t q = target.find('?');
  req.path = target.substr(0, q);
  if (q != std::string::npos) {
    for (absl::string_view kv : absl::StrSplit(target.substr(q + 1), '&', absl::SkipEmpty())) {
      const size_t eq = kv.find('=');
      req.query[percentDecode(kv.substr(0, eq))] =
          eq == absl::string_view::npos ? "" : percentDecode(kv.substr(eq + 1));
    }
  }
  req.keep_alive = first[2] == "HTTP/1.1";
  for (size_t i = 1; i < lines.size(); ++i) {
    const size_t colon = lines[i].find(':');
    if (colon == std::string::npos) {
      return false;
    }
    req.headers[absl::AsciiStrToLower(lines[i].substr(0, colon))] =
        std::string(absl::StripAsciiWhitespace(lines[i].substr(colon + 1)));
  }
  if (auto c = req.headers.find("connection"); c != req.headers.end()) {
    req.keep_alive = absl::AsciiStrToLower(c->second) != "close";
  }
  if (auto te = req.headers.find("transfer-encoding");
      te != req.headers.end() && absl::AsciiStrToLower(te->second) == "chunked") {
    return readChunkedBody(fd, buffer, req.body);
  }
  size_t length = 0;
  if (auto cl = req.headers.find("content-length"); cl != req.headers.end()) {
    if (!absl::SimpleAtoi(cl->second, &length) || length > kMaxBody) {
      return false;
    }
  }
  while (buffer.size() < length) {
    if (!readMore(fd, buffer)) {
      return false;
    }
  }
  req.body = buffer.substr(0, length);
  buffer.erase(0, length);
  return true;
}

bool writeAll(int fd, const std::string& data) {
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0) {
      return false;
    }
    off += static_cast<size_t>(n);
  }
  return true;
}

bool writeResponse(int fd, int status, const std::string& body, bool keep_alive) {
  return writeAll(
      fd, absl::StrCat("HTTP/1.1 ", status, " ", http::reasonPhrase(status),
                       "\r\nContent-Type: application/json\r\nContent-Length: ", body.size(),
                       keep_alive ? "" : "\r\nConnection: close", "\r\n\r\n", body));
}

bool writeChunkedHeader(int fd) {
  return writeAll(fd,
                  "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                  "Transfer-Encoding: chunked\r\n\r\n");
}

bool writeChunk(int fd, const std::string& data) {
  return writeAll(fd, absl::StrCat(absl::Hex(data.size()), "\r\n", data, "\r\n"));
}

bool writeLastChunk(int fd) {
  return writeAll(fd, "0\r\n\r\n");
}

std::string queryParam(const FakeApiServer::Request& req, const char* key) {
  auto it = req.query.find(key);
  return it == req.query.end() ? "" : it->second;
}

bool queryBool(const FakeApiServer::Request& req, const char* key) {
  auto it = req.query.find(key);
  if (it == req.query.end()) {
    return false;
  }
  const std::string& v = it->second;
  return v == "1" || v == "t" || v == "T" || v == "true" || v == "TRUE" || v == "True";
}

nlohmann::json statusObject(int code, const std::string& reason, const std::string& message) {
  return {{"kind", "Status"},    {"apiVersion", "v1"}, {"metadata", nlohmann::json::object()},
          {"status", "Failure"}, {"message", message}, {"reason", reason},
          {"code", code}};
}

const char* statusReason(int code) {
  switch (code) {
    case 400:
      return "BadRequest";
    case 401:
      return "Unauthorized";
    case 404:
      return "NotFound";
    case 405:
      return "MethodNotAllowed";
    case 409:
      return "Conflict";
    case 410:
      return "Expired";
    case 415:
      return "UnsupportedMediaType";
    case 422:
      return "Invalid";
    default:
      return "InternalError";
  }
}

FakeApiServer::Response failure(int code, const std::string& message, const char* reason) {
  return {code, statusObject(code, reason != nullptr ? reason : statusReason(code), message)};
}

FakeApiServer::Response failure(const absl::Status& status) {
  const std::string message(status.message());
  switch (status.code()) {
    case absl::StatusCode::kInvalidArgument:
      return failure(400, message);
    case absl::StatusCode::kNotFound:
      return failure(404, message);
    case absl::StatusCode::kAlreadyExists:
      return failure(409, message, "AlreadyExists");
    case absl::StatusCode::kFailedPrecondition:
      return failure(409, message);
    case absl::StatusCode::kOutOfRange:
      return failure(422, message);
    case absl::StatusCode::kUnimplemented:
      return failure(415, message);
    default:
      return failure(500, message);
  }
}

}  // namespace ferry::fakes::wire
