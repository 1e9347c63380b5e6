// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "bpf/abi.h"

namespace ferry::bpf::abi {

const char* counterName(uint32_t counter) {
  switch (counter) {
    case FERRY_CTR_CONNECT_CAPTURED:
      return "connect_captured";
    case FERRY_CTR_CONNECT_EXCLUDED_PORT:
      return "connect_excluded_port";
    case FERRY_CTR_CONNECT_OPTED_OUT:
      return "connect_opted_out";
    case FERRY_CTR_CONNECT_NOT_MESH:
      return "connect_not_mesh";
    case FERRY_CTR_CONNECT_AGENT_SOCKET:
      return "connect_agent_socket";
    case FERRY_CTR_CONNECT_REFUSED:
      return "connect_refused";
    case FERRY_CTR_CONNECT_NO_LISTENER:
      return "connect_no_listener";
    case FERRY_CTR_ORIG_DST_RECORDED:
      return "orig_dst_recorded";
    case FERRY_CTR_INBOUND_STEERED:
      return "inbound_steered";
    case FERRY_CTR_INBOUND_EXCLUDED:
      return "inbound_excluded";
    case FERRY_CTR_INBOUND_REFUSED:
      return "inbound_refused";
    case FERRY_CTR_SPLICED:
      return "spliced";
    case FERRY_CTR_SPLICE_MSGS:
      return "splice_msgs";
    case FERRY_CTR_SPLICE_MISS:
      return "splice_miss";
    case FERRY_CTR_CONNECT_DIRECT:
      return "connect_direct";
    case FERRY_CTR_INBOUND_DIRECT:
      return "inbound_direct";
    case FERRY_CTR_DIRECT_EVENT_LOST:
      return "direct_event_lost";
    default:
      return "unknown";
  }
}

}  // namespace ferry::bpf::abi
