// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "controller/ca/csr_authorizer.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "tls/x509.h"

namespace ferry::ca {

absl::StatusOr<std::vector<std::string>> csrUriSans(const std::string& csr_pem) {
  auto csr = tls::csrFromPem(csr_pem);
  if (!csr.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("CSR: ", csr.status().message()));
  }
  tls::UniqueExtStack exts(X509_REQ_get_extensions(csr->get()));
  std::vector<std::string> out;
  if (!exts) {
    tls::drainOpensslErrors();
    return out;
  }
  tls::UniqueGeneralNames names(static_cast<GENERAL_NAMES*>(
      X509V3_get_d2i(exts.get(), NID_subject_alt_name, nullptr, nullptr)));
  if (!names) {
    tls::drainOpensslErrors();
    return out;
  }
  for (int i = 0; i < sk_GENERAL_NAME_num(names.get()); ++i) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(names.get(), i);
    if (name->type == GEN_URI) {
      const ASN1_IA5STRING* uri = name->d.uniformResourceIdentifier;
      out.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(uri)),
                       static_cast<size_t>(ASN1_STRING_length(uri)));
    }
  }
  return out;
}

absl::StatusOr<WorkloadCsrAuthorizer::Signed> WorkloadCsrAuthorizer::signForPod(
    const std::string& caller_node, const model::ObjectKey& pod, const std::string& csr_pem,
    absl::Time now) {
  std::optional<model::Workload> workload = view_.findWorkload(pod);
  if (!workload.has_value()) {
    return absl::PermissionDeniedError(
        absl::StrCat("CSR refused: pod ", pod.str(), " is not known to the controller"));
  }
  if (workload->node != caller_node) {
    return absl::PermissionDeniedError(
        absl::StrCat("CSR refused: pod ", pod.str(), " is scheduled on node '", workload->node,
                     "', not on the asking node '", caller_node, "'"));
  }
  if (!workload->mesh_enabled) {
    return absl::PermissionDeniedError(
        absl::StrCat("CSR refused: pod ", pod.str(), " is not in the mesh (opted out)"));
  }
  const std::string expected = model::spiffeId(ca_.config().trust_domain, *workload);
  auto asked = csrUriSans(csr_pem);
  if (!asked.ok()) {
    return asked.status();
  }
  if (asked->size() != 1 || asked->front() != expected) {
    return absl::PermissionDeniedError(absl::StrCat(
        "CSR refused: it asks for [", absl::StrJoin(*asked, ", "), "] but pod ", pod.str(),
        " runs as service account '", workload->service_account, "' (", expected, ")"));
  }
  auto id = tls::SpiffeId::parse(expected);
  if (!id.ok()) {
    return id.status();
  }
  auto cert = ca_.sign(csr_pem, *id, now);
  if (!cert.ok()) {
    return cert.status();
  }
  return Signed{*cert, ca_.trustBundlePem(now)};
}

}  // namespace ferry::ca
