// Messages on the pipes between a handler and the coordinator.
//   handler -> coordinator: the request's 12-byte wire header, a u32 source
//       id (BETS: the id the OPEN reply gave), a u32 body length, the body:
//       OPEN: the source name; BETS: one u64 hash per bet, then the bets
//       already rendered as store lines; otherwise nothing
//   coordinator -> handler: a u32 source id (OPEN), a u16 count of bets
//       stored now (BETS), then the wire reply to relay
// Handlers block on their one pipe; the coordinator parses from a buffer.
#pragma once

#include "common/io.hpp"
#include "common/protocol.hpp"

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace ipc {

constexpr std::size_t kRequestHeaderSize = wire::kRequestHeaderSize + 4 + 4;
constexpr std::size_t kReplyPrefixSize = 4 + 2;
// 56 hashes and 56 bets of at most ~300 bytes each as CSV lines fit with room to spare.
constexpr std::size_t kMaxBody = 64 * 1024;

using SourceId = std::uint32_t;

struct Request {
    wire::RequestHeader header;
    SourceId source = 0;               // BETS: the connection's open source
    std::string name;                  // OPEN: the source name
    std::vector<std::uint64_t> hashes; // BETS: one per bet, in frame order
    std::string lines;                 // BETS: one store line per bet, in frame order
};

struct Reply {
    SourceId source = 0;          // OPEN: the id later BETS name
    std::uint16_t stored_now = 0; // BETS: the frame's last `stored_now` bets were stored now
    wire::Bytes frame;            // the wire reply: header (+ documents, + digest)
};

// --- handler side (blocking) ---
// The message on the pipe for `request`, appended to `out` (a handler sends
// several at once); send_request writes one.
void append_request(std::string& out, const Request& request);
IoStatus send_request(int fd, const Request& request);
IoStatus receive_reply(int fd, Reply& reply);

// --- coordinator side ---
std::string encode_reply(const Reply& reply);

enum class Parse { incomplete, ok, invalid };
// Takes one whole request off the front of `inbox` if one is there.
Parse take_request(std::string& inbox, Request& request);

} // namespace ipc
