// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "trace/otlp.h"

#include <map>

#include "userspace/trace/otlp_trace.pb.h"

namespace ferry::trace {
namespace {

namespace pb = opentelemetry::proto::collector::trace::v1;

template <size_t N>
std::string bytesOf(const std::array<uint8_t, N>& id) {
  return std::string(reinterpret_cast<const char*>(id.data()), N);
}

void setAttributes(const Attributes& from, google::protobuf::RepeatedPtrField<pb::KeyValue>& to) {
  for (const auto& [key, value] : from) {
    pb::KeyValue* kv = to.Add();
    kv->set_key(key);
    pb::AnyValue* v = kv->mutable_value();
    if (const auto* s = std::get_if<std::string>(&value)) {
      v->set_string_value(*s);
    } else if (const auto* i = std::get_if<int64_t>(&value)) {
      v->set_int_value(*i);
    } else {
      v->set_bool_value(std::get<bool>(value));
    }
  }
}

void setSpan(const Span& from, pb::Span& to) {
  to.set_trace_id(bytesOf(from.trace_id));
  to.set_span_id(bytesOf(from.span_id));
  if (from.parent_span_id != std::array<uint8_t, 8>{}) {
    to.set_parent_span_id(bytesOf(from.parent_span_id));
  }
  // Bits 0-7: the W3C trace flags; bits 8-9: whether the parent is remote is known (it always
  // is here) and is (a parent span always came from another process).
  uint32_t flags = from.flags | 0x100;
  if (from.parent_span_id != std::array<uint8_t, 8>{}) {
    flags |= 0x200;
  }
  to.set_flags(flags);
  to.set_name(from.name);
  to.set_kind(from.kind == SpanKind::kServer ? pb::Span::SPAN_KIND_SERVER
                                             : pb::Span::SPAN_KIND_CLIENT);
  to.set_start_time_unix_nano(from.start_unix_nanos);
  to.set_end_time_unix_nano(from.end_unix_nanos);
  setAttributes(from.attributes, *to.mutable_attributes());
  if (from.error) {
    to.mutable_status()->set_code(pb::Status::STATUS_CODE_ERROR);
  }
}

}  // namespace

std::string encodeOtlp(std::span<const Span> spans) {
  pb::ExportTraceServiceRequest request;
  std::map<Attributes, pb::ScopeSpans*> by_resource;
  for (const Span& span : spans) {
    auto [it, added] = by_resource.try_emplace(span.resource, nullptr);
    if (added) {
      pb::ResourceSpans* rs = request.add_resource_spans();
      setAttributes(span.resource, *rs->mutable_resource()->mutable_attributes());
      it->second = rs->add_scope_spans();
      it->second->mutable_scope()->set_name(kInstrumentationScope);
    }
    setSpan(span, *it->second->add_spans());
  }
  return request.SerializeAsString();
}

}  // namespace ferry::trace
