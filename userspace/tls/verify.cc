// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "tls/verify.h"

#include "absl/strings/str_cat.h"
#include "tls/x509.h"

namespace ferry::tls {
namespace {

// Leaf, at most one intermediate, root: deeper chains are not something Ferry's CA issues.
constexpr int kMaxChainDepth = 4;

absl::Status denied(absl::string_view why) {
  return absl::PermissionDeniedError(absl::StrCat("peer certificate refused: ", why));
}

}  // namespace

absl::StatusOr<std::shared_ptr<const TrustBundle>> TrustBundle::fromPem(absl::string_view pem) {
  absl::StatusOr<std::vector<UniqueX509>> roots = certChainFromPem(pem);
  if (!roots.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("trust bundle: ", roots.status().message()));
  }
  return fromCerts(std::move(*roots));
}

absl::StatusOr<std::shared_ptr<const TrustBundle>> TrustBundle::fromCerts(
    std::vector<UniqueX509> roots) {
  if (roots.empty()) {
    return absl::InvalidArgumentError("trust bundle has no root certificate");
  }
  std::shared_ptr<TrustBundle> bundle(new TrustBundle());
  bundle->store_.reset(X509_STORE_new());
  if (!bundle->store_) {
    return opensslError("cannot create X509_STORE");
  }
  for (size_t i = 0; i < roots.size(); ++i) {
    if ((X509_get_extension_flags(roots[i].get()) & EXFLAG_CA) == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("trust bundle certificate ", i + 1, " is not a CA certificate"));
    }
    if (X509_STORE_add_cert(bundle->store_.get(), roots[i].get()) != 1) {
      return opensslError(absl::StrCat("cannot add trust bundle certificate ", i + 1));
    }
  }
  bundle->roots_ = std::move(roots);
  return std::shared_ptr<const TrustBundle>(std::move(bundle));
}

absl::StatusOr<SpiffeId> verifySvid(const TrustBundle& bundle, X509* leaf,
                                    STACK_OF(X509) * intermediates, absl::string_view trust_domain,
                                    absl::Time now, int* x509_error) {
  int ignored = 0;
  int& error_out = x509_error != nullptr ? *x509_error : ignored;
  error_out = X509_V_ERR_APPLICATION_VERIFICATION;
  absl::StatusOr<CertInfo> info = inspectCert(leaf);
  if (!info.ok()) {
    return denied(info.status().message());
  }
  absl::StatusOr<SpiffeId> id = info->spiffeId();
  if (!id.ok()) {
    return denied(id.status().message());
  }
  if (id->trust_domain != trust_domain) {
    return denied(absl::StrCat("trust domain '", id->trust_domain, "' of ", id->uri(),
                               " is not the expected '", trust_domain, "'"));
  }
  if (info->is_ca) {
    return denied(absl::StrCat(id->uri(), " is a CA certificate, not a workload leaf"));
  }
  UniqueX509StoreCtx ctx(X509_STORE_CTX_new());
  if (!ctx || X509_STORE_CTX_init(ctx.get(), bundle.store(), leaf, intermediates) != 1) {
    return opensslError("cannot set up certificate verification");
  }
  X509_VERIFY_PARAM* param = X509_STORE_CTX_get0_param(ctx.get());
  X509_VERIFY_PARAM_set_time(param, absl::ToTimeT(now));
  X509_VERIFY_PARAM_set_depth(param, kMaxChainDepth);
  int ok = X509_verify_cert(ctx.get());
  drainOpensslErrors();
  if (ok != 1) {
    int err = X509_STORE_CTX_get_error(ctx.get());
    error_out = err;
    switch (err) {
      case X509_V_ERR_CERT_HAS_EXPIRED: {
        X509* failed = X509_STORE_CTX_get_current_cert(ctx.get());
        absl::StatusOr<CertInfo> failed_info = inspectCert(failed);
        std::string which = failed == leaf || !failed_info.ok()
                                ? absl::StrCat("certificate of ", id->uri())
                                : absl::StrCat("issuer certificate ", failed_info->subject);
        absl::Time when = failed_info.ok() ? failed_info->not_after : info->not_after;
        return denied(absl::StrCat(which, " expired at ", absl::FormatTime(when), " (now ",
                                   absl::FormatTime(now), ")"));
      }
      case X509_V_ERR_CERT_NOT_YET_VALID:
        return denied(absl::StrCat("certificate of ", id->uri(), " is not valid before ",
                                   absl::FormatTime(info->not_before)));
      case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
      case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
      case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
      case X509_V_ERR_CERT_SIGNATURE_FAILURE:
      case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
      case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
        return denied(absl::StrCat("certificate of ", id->uri(),
                                   " is not signed by a trusted root of the trust bundle (",
                                   X509_verify_cert_error_string(err), ")"));
      default:
        return denied(absl::StrCat("certificate of ", id->uri(), " failed chain verification: ",
                                   X509_verify_cert_error_string(err)));
    }
  }
  error_out = X509_V_OK;
  return id;
}

}  // namespace ferry::tls
