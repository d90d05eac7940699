// Wire codec (see protocol.hpp). The only place that knows byte order and
// field offsets.
#include "common/protocol.hpp"

#include <algorithm>
#include <cstring>

namespace wire {

void put_u16(std::uint8_t* out, std::uint16_t value) {
    out[0] = static_cast<std::uint8_t>(value >> 8);
    out[1] = static_cast<std::uint8_t>(value);
}

void put_u32(std::uint8_t* out, std::uint32_t value) {
    for (int i = 0; i < 4; ++i) out[i] = static_cast<std::uint8_t>(value >> (24 - 8 * i));
}

void put_u64(std::uint8_t* out, std::uint64_t value) {
    put_u32(out, static_cast<std::uint32_t>(value >> 32));
    put_u32(out + 4, static_cast<std::uint32_t>(value));
}

std::uint16_t get_u16(const std::uint8_t* in) {
    return static_cast<std::uint16_t>(in[0] << 8 | in[1]);
}

std::uint32_t get_u32(const std::uint8_t* in) {
    return std::uint32_t{in[0]} << 24 | std::uint32_t{in[1]} << 16 | std::uint32_t{in[2]} << 8 | in[3];
}

std::uint64_t get_u64(const std::uint8_t* in) { return std::uint64_t{get_u32(in)} << 32 | get_u32(in + 4); }

namespace {

// Copies `text` into a fixed field, right-padded with spaces.
void put_padded(std::uint8_t* out, std::size_t width, std::string_view text) {
    const std::size_t used = std::min(width, text.size());
    std::memcpy(out, text.data(), used);
    std::memset(out + used, ' ', width - used);
}

// A fixed field without its right padding.
std::string_view get_padded(const std::uint8_t* in, std::size_t width) {
    std::string_view field(reinterpret_cast<const char*>(in), width);
    const std::size_t end = field.find_last_not_of(' ');
    return end == std::string_view::npos ? std::string_view{} : field.substr(0, end + 1);
}

bool is_known_request(std::uint16_t type) { return type >= 1 && type <= 5; }
bool is_known_reply(std::uint16_t type) { return type >= 1 && type <= 5; }

constexpr std::uint64_t kFnvBasis = 0xcbf29ce484222325;
constexpr std::uint64_t kFnvPrime = 0x100000001b3;

Bytes with_header(const RequestHeader& header, std::size_t payload_bytes) {
    Bytes frame(kRequestHeaderSize + payload_bytes);
    const auto head = encode_request_header(header);
    std::copy(head.begin(), head.end(), frame.begin());
    return frame;
}

} // namespace

bool RequestHeader::operator==(const RequestHeader& other) const {
    return type == other.type && agency == other.agency && first == other.first &&
           count == other.count;
}

bool ReplyHeader::operator==(const ReplyHeader& other) const {
    return type == other.type && value == other.value;
}

const char* to_string(RequestType type) {
    switch (type) {
    case RequestType::bets: return "BETS";
    case RequestType::done: return "DONE";
    case RequestType::winners: return "WINNERS";
    case RequestType::echo: return "ECHO";
    case RequestType::open: return "OPEN";
    }
    return "UNKNOWN";
}

const char* to_string(ErrorCode code) {
    switch (code) {
    case ErrorCode::malformed_frame: return "malformed frame";
    case ErrorCode::invalid_bet: return "invalid bet";
    case ErrorCode::bad_agency: return "bad agency";
    case ErrorCode::gap: return "gap";
    case ErrorCode::draw_held: return "draw held";
    case ErrorCode::shutting_down: return "shutting down";
    case ErrorCode::storage_failure: return "storage failure";
    case ErrorCode::fenced: return "fenced";
    }
    return "unknown error";
}

std::size_t payload_size(const RequestHeader& header) {
    switch (header.type) {
    case RequestType::bets: return header.count * kBetSize;
    case RequestType::echo:
    case RequestType::open: return header.count;
    default: return 0;
    }
}

std::array<std::uint8_t, kRequestHeaderSize> encode_request_header(const RequestHeader& header) {
    std::array<std::uint8_t, kRequestHeaderSize> bytes{};
    put_u16(&bytes[0], static_cast<std::uint16_t>(header.type));
    put_u32(&bytes[2], header.agency);
    put_u32(&bytes[6], header.first);
    put_u16(&bytes[10], header.count);
    return bytes;
}

Result<RequestHeader> decode_request_header(const std::uint8_t* bytes) {
    const std::uint16_t type = get_u16(&bytes[0]);
    if (!is_known_request(type)) return {ErrorCode::malformed_frame, "unknown frame type"};
    RequestHeader header{static_cast<RequestType>(type), get_u32(&bytes[2]), get_u32(&bytes[6]),
                         get_u16(&bytes[10])};
    switch (header.type) {
    case RequestType::bets:
        if (header.count == 0) return {ErrorCode::malformed_frame, "BETS with no bets"};
        if (header.count > kMaxBetsPerFrame) return {ErrorCode::malformed_frame, "frame over 8 KiB"};
        // The stored count this frame makes must still fit RESUME's u32.
        if (std::uint64_t{header.first} + header.count > UINT32_MAX)
            return {ErrorCode::malformed_frame, "positions past the protocol's 32-bit range"};
        break;
    case RequestType::done:
    case RequestType::winners:
        if (header.count != 0 || header.first != 0)
            return {ErrorCode::malformed_frame, "count and first must be 0"};
        break;
    case RequestType::echo:
        if (header.count > kMaxEchoPayload) return {ErrorCode::malformed_frame, "frame over 8 KiB"};
        break;
    case RequestType::open:
        if (header.first != 0) return {ErrorCode::malformed_frame, "first must be 0"};
        if (header.count == 0 || header.count > kMaxSourceName)
            return {ErrorCode::malformed_frame, "source name must be 1 to 64 bytes"};
        break;
    }
    return header;
}

std::array<std::uint8_t, kReplyHeaderSize> encode_reply_header(const ReplyHeader& header) {
    std::array<std::uint8_t, kReplyHeaderSize> bytes{};
    put_u16(&bytes[0], static_cast<std::uint16_t>(header.type));
    put_u32(&bytes[2], header.value);
    return bytes;
}

Result<ReplyHeader> decode_reply_header(const std::uint8_t* bytes) {
    const std::uint16_t type = get_u16(&bytes[0]);
    if (!is_known_reply(type)) return {ErrorCode::malformed_frame, "unknown reply type"};
    return ReplyHeader{static_cast<ReplyType>(type), get_u32(&bytes[2])};
}

// Record layout: first name 64 | last name 64 | document 8 | birthdate 8 | number 2.
void encode_bet(const Bet& bet, std::uint8_t* record) {
    std::uint8_t* field = record;
    put_padded(field, kNameSize, bet.first_name), field += kNameSize;
    put_padded(field, kNameSize, bet.last_name), field += kNameSize;
    put_padded(field, kDocumentSize, bet.document), field += kDocumentSize;
    std::string compact = bet.birthdate; // YYYY-MM-DD -> YYYYMMDD
    compact.erase(std::remove(compact.begin(), compact.end(), '-'), compact.end());
    put_padded(field, kBirthdateSize, compact), field += kBirthdateSize;
    put_u16(field, bet.number);
}

Result<Bet> decode_bet(const std::uint8_t* record, std::uint32_t agency) {
    Bet bet;
    bet.agency = agency;
    const std::uint8_t* field = record;
    bet.first_name = get_padded(field, kNameSize), field += kNameSize;
    bet.last_name = get_padded(field, kNameSize), field += kNameSize;
    bet.document = get_padded(field, kDocumentSize), field += kDocumentSize;
    const std::string_view date(reinterpret_cast<const char*>(field), kBirthdateSize);
    field += kBirthdateSize;
    bet.birthdate.reserve(10);
    bet.birthdate.append(date.substr(0, 4)).append("-").append(date.substr(4, 2)).append("-").append(date.substr(6, 2));
    bet.number = get_u16(field);
    if (auto problem = bet_problem(bet)) return {ErrorCode::invalid_bet, *problem};
    return bet;
}

std::uint64_t record_hash(const std::uint8_t* record) {
    std::uint64_t hash = kFnvBasis;
    for (std::size_t i = 0; i < kBetSize; ++i) hash = (hash ^ record[i]) * kFnvPrime;
    return hash;
}

std::uint64_t bet_hash(const Bet& bet) {
    std::uint8_t record[kBetSize];
    encode_bet(bet, record);
    return record_hash(record);
}

void record_hashes(const std::uint8_t* records, std::size_t count, std::uint64_t* hashes) {
    std::size_t i = 0;
    for (; i + 4 <= count; i += 4) {
        const std::uint8_t* r = records + i * kBetSize;
        std::uint64_t h0 = kFnvBasis, h1 = kFnvBasis, h2 = kFnvBasis, h3 = kFnvBasis;
        for (std::size_t b = 0; b < kBetSize; ++b) {
            h0 = (h0 ^ r[b]) * kFnvPrime;
            h1 = (h1 ^ r[kBetSize + b]) * kFnvPrime;
            h2 = (h2 ^ r[2 * kBetSize + b]) * kFnvPrime;
            h3 = (h3 ^ r[3 * kBetSize + b]) * kFnvPrime;
        }
        hashes[i] = h0, hashes[i + 1] = h1, hashes[i + 2] = h2, hashes[i + 3] = h3;
    }
    for (; i < count; ++i) hashes[i] = record_hash(records + i * kBetSize);
}

bool is_valid_source_name(std::string_view name) {
    if (name.empty() || name.size() > kMaxSourceName) return false;
    return std::all_of(name.begin(), name.end(), [](char c) {
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
               c == '_' || c == '-';
    });
}

Bytes encode_bets_frame(std::uint32_t agency, std::uint32_t first, const std::vector<Bet>& bets) {
    Bytes frame = with_header({RequestType::bets, agency, first, static_cast<std::uint16_t>(bets.size())},
                              bets.size() * kBetSize);
    for (std::size_t i = 0; i < bets.size(); ++i)
        encode_bet(bets[i], &frame[kRequestHeaderSize + i * kBetSize]);
    return frame;
}

Bytes encode_open_frame(std::uint32_t agency, std::string_view source) {
    Bytes frame = with_header({RequestType::open, agency, 0, static_cast<std::uint16_t>(source.size())}, source.size());
    std::copy(source.begin(), source.end(), frame.begin() + kRequestHeaderSize);
    return frame;
}

Bytes encode_request(RequestType type, std::uint32_t agency) { return with_header({type, agency, 0, 0}, 0); }

Bytes encode_echo_frame(std::string_view payload) {
    Bytes frame = with_header({RequestType::echo, 0, 0, static_cast<std::uint16_t>(payload.size())}, payload.size());
    std::copy(payload.begin(), payload.end(), frame.begin() + kRequestHeaderSize);
    return frame;
}

Result<std::vector<Bet>> decode_bets(const RequestHeader& header, const std::uint8_t* payload) {
    std::vector<Bet> bets;
    bets.reserve(header.count);
    for (std::size_t i = 0; i < header.count; ++i) {
        auto bet = decode_bet(payload + i * kBetSize, header.agency);
        if (!bet.ok()) return {bet.error(), bet.reason()};
        bets.push_back(std::move(bet.value()));
    }
    return bets;
}

Bytes encode_reply(ReplyType type, std::uint32_t value) {
    const auto head = encode_reply_header(ReplyHeader{type, value});
    return Bytes(head.begin(), head.end());
}

Bytes encode_error(ErrorCode code) {
    return encode_reply(ReplyType::error, static_cast<std::uint32_t>(code));
}

Bytes encode_winners_reply(const std::vector<std::string>& documents) {
    Bytes reply = encode_reply(ReplyType::winners, static_cast<std::uint32_t>(documents.size()));
    reply.resize(kReplyHeaderSize + documents.size() * kDocumentSize);
    for (std::size_t i = 0; i < documents.size(); ++i)
        put_padded(&reply[kReplyHeaderSize + i * kDocumentSize], kDocumentSize, documents[i]);
    return reply;
}

Bytes encode_resume_reply(std::uint32_t stored, Digest digest) {
    Bytes reply = encode_reply(ReplyType::resume, stored);
    reply.resize(kReplyHeaderSize + kDigestSize);
    put_u64(&reply[kReplyHeaderSize], digest);
    return reply;
}

Result<std::vector<std::string>> decode_documents(const std::uint8_t* bytes, std::size_t count) {
    std::vector<std::string> documents;
    documents.reserve(count);
    for (std::size_t i = 0; i < count; ++i) {
        std::string document(get_padded(bytes + i * kDocumentSize, kDocumentSize));
        if (!is_valid_document(document)) return {ErrorCode::malformed_frame, "bad document in WINNERS"};
        documents.push_back(std::move(document));
    }
    return documents;
}

} // namespace wire
