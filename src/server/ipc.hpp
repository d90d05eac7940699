// Messages on the pipes between a handler and the coordinator.
//   handler -> coordinator: the request's 12-byte wire header, a u32 length,
//                           then the batch's bets already rendered as store lines
//   coordinator -> handler: a u8 Outcome, then the wire reply to relay
// Handlers block on their one pipe; the coordinator parses from a buffer.
#pragma once

#include "common/io.hpp"
#include "common/protocol.hpp"

#include <cstdint>
#include <string>
#include <string_view>

namespace ipc {

constexpr std::size_t kRequestHeaderSize = wire::kRequestHeaderSize + 4;
// 56 bets of at most ~300 bytes each as CSV lines fit with room to spare.
constexpr std::size_t kMaxLines = 64 * 1024;

struct Request {
    wire::RequestHeader header;
    std::string lines; // BETS: the store lines to append; otherwise empty
};

// What the coordinator did, so the handler can log it truthfully.
enum class Outcome : std::uint8_t {
    answered = 0,  // nothing stored (DONE, WINNERS, errors)
    stored = 1,    // the batch was appended to the store now
    duplicate = 2, // the batch was already stored; ACKed again, not stored again
};

struct Reply {
    Outcome outcome = Outcome::answered;
    wire::Bytes frame; // the wire reply: header (+ documents for WINNERS)
};

// --- handler side (blocking) ---
IoStatus send_request(int fd, const wire::RequestHeader& header, std::string_view lines);
IoStatus receive_reply(int fd, Reply& reply);

// --- coordinator side ---
std::string encode_reply(const Reply& reply);

enum class Parse { incomplete, ok, invalid };
// Takes one whole request off the front of `inbox` if one is there.
Parse take_request(std::string& inbox, Request& request);

} // namespace ipc
