// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// The HTTP/1.1 framing the fake API server needs: read one request from a socket, write a
// response with Content-Length, or a chunked stream one chunk at a time.

#include <map>
#include <string>

#include "absl/status/status.h"

#include "fakes/kube_api_server/fake_api_server.h"

namespace ferry::fakes {

struct FakeApiServer::Request {
  std::string method;
  std::string path;                            // without the query
  std::map<std::string, std::string> query;    // decoded
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
  bool keep_alive = true;
};

struct FakeApiServer::Response {
  int status = 200;
  nlohmann::json body;
};

namespace wire {

// Reads the next request; false when the peer closed or sent garbage.
bool readRequest(int fd, std::string& buffer, FakeApiServer::Request& req);
bool writeAll(int fd, const std::string& data);
bool writeResponse(int fd, int status, const std::string& body, bool keep_alive);
bool writeChunkedHeader(int fd);
bool writeChunk(int fd, const std::string& data);
bool writeLastChunk(int fd);
// A query parameter ("" when absent).
std::string queryParam(const FakeApiServer::Request& req, const char* key);
// A boolean query parameter as the API server reads it (Go's strconv.ParseBool: 1, t, T,
// true, TRUE, True).
bool queryBool(const FakeApiServer::Request& req, const char* key);
// A v1 Status object as the API server returns for failures.
nlohmann::json statusObject(int code, const std::string& reason, const std::string& message);
// The Status reason the API server gives with an HTTP status (409: Conflict).
const char* statusReason(int code);
// A failed request as the API server answers it: the HTTP status and a Status object.
FakeApiServer::Response failure(int code, const std::string& message, const char* reason = nullptr);
// From a Status of the object API: InvalidArgument 400 BadRequest, NotFound 404,
// AlreadyExists 409 AlreadyExists, FailedPrecondition 409 Conflict (stale resourceVersion),
// OutOfRange 422 Invalid, Unimplemented 415 UnsupportedMediaType.
FakeApiServer::Response failure(const absl::Status& status);

}  // namespace wire
}  // namespace ferry::fakes
