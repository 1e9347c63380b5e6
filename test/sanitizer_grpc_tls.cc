// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
// Sanitizer settings for the test binaries that run gRPC over TLS (linked into those alone).
//
// OpenSSL 3 keeps an error queue per thread (ERR_STATE, 904 bytes) and frees it from a thread-exit
// handler. gRPC's own threads can touch the queue again while they or the process wind down, after
// that handler ran, and the queue is then never freed: LeakSanitizer reports "Direct leak of 904
// byte(s) ... CRYPTO_zalloc" about once in many runs (seen in CI in distribution_server_test;
// upstream: grpc/grpc#38539, openssl/openssl#25578). It is not Ferry's memory and Ferry cannot free
// it. The suppression names exactly that allocation: every leak whose stack passes through an
// OpenSSL `ERR_*` entry point (those allocate only the per-thread queue and its strings). Matching
// needs the whole stack, and libcrypto has no frame pointers, so these binaries unwind allocations
// with DWARF (fast_unwind_on_malloc=0): slower, but it also names the caller of any leak of ours
// that passes through OpenSSL, which the fast unwinder reduces to `CRYPTO_zalloc`.
#if defined(__SANITIZE_ADDRESS__)

extern "C" const char* __asan_default_options() {
  return "fast_unwind_on_malloc=0";
}

extern "C" const char* __lsan_default_suppressions() {
  return "leak:^ERR_\n";
}

#endif
