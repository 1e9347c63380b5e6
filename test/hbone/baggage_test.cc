// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
// The source metadata an HBONE CONNECT carries (W3C baggage, ztunnel's keys): encoding,
// decoding, the certificate check, and the header crossing a real client/server pair.

#include "hbone/baggage.h"

#include <catch2/catch.hpp>
#include <string>

#include "pair.h"

namespace ferry::hbone::testing {
namespace {

Baggage fullBaggage() {
  return {.cluster = "Kubernetes",
          .ns = "shop",
          .workload = "cart",
          .workload_kind = "deployment",
          .service_account = "cart",
          .service = "cart-svc",
          .revision = "v2",
          .app = "cart",
          .version = "v2"};
}

TEST_CASE("baggage encodes ztunnel's keys plus the service account and decodes back") {
  Baggage b = fullBaggage();
  CHECK(encodeBaggage(b) ==
        "k8s.cluster.name=Kubernetes,k8s.namespace.name=shop,k8s.deployment.name=cart,"
        "k8s.serviceaccount.name=cart,service.name=cart-svc,service.version=v2,"
        "k8s.pod.label.app=cart,k8s.pod.label.version=v2");
  Baggage back = decodeBaggage(encodeBaggage(b));
  back.workload_kind = b.workload_kind;  // the kind only picks the key; it is not read back
  CHECK(back == b);
  Baggage bare = {.ns = "shop", .workload = "cart-7d9f-x2"};
  CHECK(encodeBaggage(bare) == "k8s.namespace.name=shop,k8s.pod.name=cart-7d9f-x2");
  CHECK(encodeBaggage(Baggage{}).empty());
  CHECK(Baggage{}.empty());
  CHECK_FALSE(b.empty());
}

TEST_CASE("baggage decoding: one row per header form, each with the fields it must yield") {
  struct Row {
    const char* description;
    std::string header;
    Baggage expected;
  };
  const std::vector<Row> rows = {
      {"ztunnel's own example",
       "k8s.cluster.name=K1,k8s.namespace.name=NS1,k8s.deployment.name=N1,service.name=N2,"
       "service.version=V1",
       {.cluster = "K1", .ns = "NS1", .workload = "N1", .service = "N2", .revision = "V1"}},
      {"empty values count as absent",
       "k8s.cluster.name=,k8s.namespace.name=,k8s.deployment.name=,service.name=",
       {}},
      {"several headers joined with ','",
       "k8s.namespace.name=a,k8s.pod.name=p",
       {.ns = "a", .workload = "p"}},
      {"other workload kinds", "k8s.statefulset.name=db", {.workload = "db"}},
      {"spaces around members and properties after ';'",
       " k8s.namespace.name = shop ;prop=1 , service.name=cart;x",
       {.ns = "shop", .service = "cart"}},
      {"unknown keys and members without '=' are skipped",
       "userId=alice,garbage,k8s.namespace.name=shop",
       {.ns = "shop"}},
      {"percent-encoded values", "service.name=a%2Cb%3Bc%25", {.service = "a,b;c%"}},
      {"a malformed escape stays as it is", "service.name=a%zz%4", {.service = "a%zz%4"}},
      {"the last of a repeated key wins", "k8s.namespace.name=a,k8s.namespace.name=b", {.ns = "b"}},
      {"longer than W3C's 8192 bytes: ignored whole",
       "k8s.namespace.name=shop,x=" + std::string(kMaxBaggageBytes, 'a'),
       {}},
      {"empty header", "", {}},
  };
  for (const Row& row : rows) {
    INFO(row.description << ": " << row.header.substr(0, 120));
    CHECK(decodeBaggage(row.header) == row.expected);
  }
}

TEST_CASE("values W3C baggage cannot carry bare are percent-encoded and come back") {
  Baggage b = {.ns = "shop", .service = "a b,c;d\\e\"f%g=h"};
  std::string header = encodeBaggage(b);
  CHECK(header == "k8s.namespace.name=shop,service.name=a%20b%2Cc%3Bd%5Ce%22f%25g=h");
  CHECK(decodeBaggage(header) == b);
}

TEST_CASE("baggage is believed only when the certificate proves its namespace and account") {
  const tls::SpiffeId peer{"cluster.local", "shop", "cart"};
  struct Row {
    const char* description;
    Baggage baggage;
    bool believed;
    const char* why;
  };
  Baggage good = fullBaggage();
  Baggage forged_ns = good;
  forged_ns.ns = "kube-system";
  Baggage forged_sa = good;
  forged_sa.service_account = "admin";
  Baggage no_sa = good;
  no_sa.service_account.clear();
  Baggage no_ns = good;
  no_ns.ns.clear();
  const std::vector<Row> rows = {
      {"namespace and account match", good, true, ""},
      {"forged namespace", forged_ns, false, "namespace \"kube-system\" is not the certificate's"},
      {"forged service account", forged_sa, false,
       "service account \"admin\" is not the certificate's \"cart\""},
      {"no service account: nothing to hold against the certificate", no_sa, false,
       "service account \"\""},
      {"no namespace", no_ns, false, "namespace \"\""},
  };
  for (const Row& row : rows) {
    INFO(row.description);
    std::string why;
    CHECK(believeBaggage(row.baggage, peer, &why) == row.believed);
    CHECK_THAT(why, Catch::Contains(row.why));
  }
}

TEST_CASE("the CONNECT carries the baggage to the accept callback, and none when not sent") {
  fakes::FakeCa ca;
  std::vector<std::string> seen;
  Pair p = makePair(ca, {.accept = [&](const StreamRequest& r) {
                      seen.emplace_back(r.baggage);
                      return 200;
                    }});
  const std::string header = encodeBaggage(fullBaggage());
  auto with = p.client->openStream(*Authority::parse("10.0.0.1:80"), header);
  REQUIRE(with.ok());
  auto without = p.client->openStream(*Authority::parse("10.0.0.1:81"));
  REQUIRE(without.ok());
  // A header past the limit reaches the callback as none at all, not cut short.
  auto huge = p.client->openStream(*Authority::parse("10.0.0.1:82"),
                                   "k8s.namespace.name=shop,x=" + std::string(9000, 'a'));
  REQUIRE(huge.ok());
  p.pump();
  REQUIRE(p.client_status.ok());
  REQUIRE(p.server_status.ok());
  REQUIRE(seen.size() == 3);
  CHECK(seen[0] == header);
  CHECK(decodeBaggage(seen[0]).ns == "shop");
  CHECK(seen[1].empty());
  CHECK(seen[2].empty());
}

}  // namespace
}  // namespace ferry::hbone::testing
