// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
// Copyright Ferry authors.
//
// sk_msg on the ferry_splice sockhash: a message sent on one end of a spliced local connection
// goes straight into the other end's receive queue, skipping the loopback TCP stack.
// If the peer is not in the sockhash (yet), the message takes the ordinary TCP path: returning
// SK_PASS without a successful redirect never drops data.
#include "lib/conn.h"

SEC("sk_msg")
int ferry_sk_msg(struct sk_msg_md* msg) {
  struct ferry_conn_key self;
  FERRY_CONN_KEY_FROM(self, msg, bpf_get_netns_cookie(msg));
  struct ferry_conn_key peer;
  ferry_conn_key_swap(&peer, &self);
  if (bpf_msg_redirect_hash(msg, &ferry_splice, &peer, BPF_F_INGRESS) == SK_PASS) {
    ferry_count(FERRY_CTR_SPLICE_MSGS);
  } else {
    ferry_count(FERRY_CTR_SPLICE_MISS);
  }
  return SK_PASS;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
