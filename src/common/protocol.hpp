// The wire protocol, version 2 (docs/PROTOCOL.md): frame layouts, codes, the
// bet digest and the codec that turns bytes into typed values and back.
// Big-endian, in this one place only.
#pragma once

#include "common/bet.hpp"

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace wire {

using Bytes = std::vector<std::uint8_t>;

constexpr std::size_t kMaxFrame = 8192;
constexpr std::size_t kRequestHeaderSize = 12;
constexpr std::size_t kReplyHeaderSize = 6;
constexpr std::size_t kNameSize = 64;
constexpr std::size_t kDocumentSize = 8;
constexpr std::size_t kBirthdateSize = 8;
constexpr std::size_t kBetSize = 2 * kNameSize + kDocumentSize + kBirthdateSize + 2; // 146
constexpr std::size_t kMaxBetsPerFrame = (kMaxFrame - kRequestHeaderSize) / kBetSize; // 56
constexpr std::size_t kMaxEchoPayload = kMaxFrame - kRequestHeaderSize;
constexpr std::size_t kMaxSourceName = 64;
constexpr std::size_t kDigestSize = 8; // follows a RESUME reply header

enum class RequestType : std::uint16_t { bets = 1, done = 2, winners = 3, echo = 4, open = 5 };
enum class ReplyType : std::uint16_t { ack = 1, error = 2, winners = 3, echo = 4, resume = 5 };

enum class ErrorCode : std::uint32_t {
    malformed_frame = 1, // reply, then the connection is closed
    invalid_bet = 2,     // the whole frame is refused, nothing of it stored
    bad_agency = 3,      // out of range, or not this connection's agency
    gap = 4,             // `first` is past the bets the source has stored
    draw_held = 5,       // the frame would store new bets after the draw
    shutting_down = 6,   // reply, then the connection is closed
    storage_failure = 7, // nothing of the frame was written; try again later
    fenced = 8,          // a newer connection opened this source
};

// Big-endian integers, the byte order of every multi-byte field.
void put_u16(std::uint8_t* out, std::uint16_t value);
void put_u32(std::uint8_t* out, std::uint32_t value);
void put_u64(std::uint8_t* out, std::uint64_t value);
std::uint16_t get_u16(const std::uint8_t* in);
std::uint32_t get_u32(const std::uint8_t* in);
std::uint64_t get_u64(const std::uint8_t* in);

const char* to_string(RequestType type);
const char* to_string(ErrorCode code);

// A decoded value, or the error code (and a short static reason) that the
// peer should be told. Never a half-filled value.
template <typename T>
class Result {
public:
    Result(T value) : value_(std::move(value)) {}
    Result(ErrorCode error, std::string_view reason) : error_(error), reason_(reason) {}

    bool ok() const { return value_.has_value(); }
    const T& value() const& { return *value_; }
    T& value() & { return *value_; }
    // On a temporary, the value itself: `for (x : decode(...).value())` must not dangle.
    T value() && { return std::move(*value_); }
    ErrorCode error() const { return error_; }
    std::string_view reason() const { return reason_; }

private:
    std::optional<T> value_;
    ErrorCode error_ = ErrorCode::malformed_frame;
    std::string_view reason_;
};

struct RequestHeader {
    RequestType type = RequestType::echo;
    std::uint32_t agency = 0; // 1..65535; 0 for ECHO
    std::uint32_t first = 0;  // BETS: position of its first bet in the open source; otherwise 0
    std::uint16_t count = 0;  // BETS: bets that follow; ECHO and OPEN: payload bytes

    bool operator==(const RequestHeader& other) const;
};

struct ReplyHeader {
    ReplyType type = ReplyType::ack;
    std::uint32_t value = 0; // ACK: bets stored; ERROR: code; WINNERS: documents that follow;
                             // RESUME: bets of the source stored (its digest follows)

    bool operator==(const ReplyHeader& other) const;
};

// Bytes of payload that follow a (valid) request header.
std::size_t payload_size(const RequestHeader& header);

std::array<std::uint8_t, kRequestHeaderSize> encode_request_header(const RequestHeader& header);
// Checks all the header alone can tell: a known type, a count and `first` that
// fit the type and the 8 KiB limit. Anything else is ErrorCode::malformed_frame.
Result<RequestHeader> decode_request_header(const std::uint8_t* bytes);

std::array<std::uint8_t, kReplyHeaderSize> encode_reply_header(const ReplyHeader& header);
// Checks only that the type is known: what the value may be depends on the
// request it answers, which the caller knows.
Result<ReplyHeader> decode_reply_header(const std::uint8_t* bytes);

// One 146-byte bet record. encode_bet expects a valid bet (see bet_problem).
void encode_bet(const Bet& bet, std::uint8_t* record);
// Decodes and validates one record; the agency comes from the frame header.
Result<Bet> decode_bet(const std::uint8_t* record, std::uint32_t agency);

// The digest of a list of bets: the sum, modulo 2^64, of the FNV-1a 64 hash
// of each bet's 146-byte record. Order-free on purpose: equal digests say
// that two lists hold the same bets, whatever the batching.
using Digest = std::uint64_t;
std::uint64_t record_hash(const std::uint8_t* record);
std::uint64_t bet_hash(const Bet& bet); // of the bet's record
// The hashes of `count` consecutive records, four at a time (independent
// multiply chains run in parallel in the CPU: about 4x faster than one by one).
void record_hashes(const std::uint8_t* records, std::size_t count, std::uint64_t* hashes);

// A source name: 1 to 64 bytes of [A-Za-z0-9._-].
bool is_valid_source_name(std::string_view name);

// Whole frames.
Bytes encode_bets_frame(std::uint32_t agency, std::uint32_t first, const std::vector<Bet>& bets);
Bytes encode_open_frame(std::uint32_t agency, std::string_view source);
Bytes encode_request(RequestType type, std::uint32_t agency); // DONE or WINNERS
Bytes encode_echo_frame(std::string_view payload);
// All bets of a BETS payload, or the first invalid one's error (all-or-nothing).
Result<std::vector<Bet>> decode_bets(const RequestHeader& header, const std::uint8_t* payload);

Bytes encode_reply(ReplyType type, std::uint32_t value);
Bytes encode_error(ErrorCode code);
Bytes encode_winners_reply(const std::vector<std::string>& documents);
Bytes encode_resume_reply(std::uint32_t stored, Digest digest);
// `count` documents of 8 bytes each, right-padded with spaces.
Result<std::vector<std::string>> decode_documents(const std::uint8_t* bytes, std::size_t count);

} // namespace wire
