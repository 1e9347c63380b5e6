// Decodes OTLP/HTTP protobuf bodies (ExportTraceServiceRequest) with OpenTelemetry JS's
// generated classes (@opentelemetry/otlp-transformer, built from opentelemetry-proto) and prints
// the spans as one JSON array: ids in hex, kind and status as numbers, attributes as objects.
// Usage: node decode.mjs BODY_FILE...
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const root = require("@opentelemetry/otlp-transformer/build/src/generated/root");
const Request = root.opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest;

const hex = (bytes) => Buffer.from(bytes).toString("hex");
const value = (v) => {
  const x = v[v.value];  // `value` names the oneof field that is set
  return typeof x === "object" && x !== null ? Number(x.toString()) : x;
};
const attributes = (list) => Object.fromEntries(list.map((kv) => [kv.key, value(kv.value)]));

const spans = [];
for (const file of process.argv.slice(2)) {
  const request = Request.decode(readFileSync(file));
  for (const rs of request.resourceSpans) {
    const resource = attributes(rs.resource ? rs.resource.attributes : []);
    for (const ss of rs.scopeSpans) {
      for (const s of ss.spans) {
        spans.push({
          traceId: hex(s.traceId),
          spanId: hex(s.spanId),
          parentSpanId: hex(s.parentSpanId),
          flags: s.flags,
          name: s.name,
          kind: s.kind,
          start: s.startTimeUnixNano.toString(),
          end: s.endTimeUnixNano.toString(),
          status: s.status ? s.status.code : 0,
          scope: ss.scope ? ss.scope.name : "",
          attributes: attributes(s.attributes),
          resource,
        });
      }
    }
  }
}
console.log(JSON.stringify(spans));
