// libFuzzer target for every decoder that reads bytes a peer or a file controls:
// the wire codec (CONTRACT.md §5: requests with OPEN, replies with RESUME), the
// handler -> coordinator pipe framing and the CSV store line reader. Each input goes through all of them; a broken
// invariant prints which one and traps, so libFuzzer keeps the input.
//
//   make fuzz [FUZZ_SECONDS=30]     (tests/fuzz/fuzz.mk)
#include "common/bet.hpp"
#include "common/bet_store.hpp"
#include "common/csv.hpp"
#include "common/protocol.hpp"
#include "server/ipc.hpp"
#include "../common/spec_rules.hpp"
#include "ipc_bytes.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

using namespace wire;

using spec_rules::spec_valid;
using spec_rules::spec_valid_source_name;
using spec_rules::spec_valid_utf8_name;

namespace {

[[noreturn]] void violated(const char* invariant) {
    std::fprintf(stderr, "decoder_fuzz: invariant violated: %s\n", invariant);
    __builtin_trap();
}

#define CHECK(condition)                       \
    do {                                       \
        if (!(condition)) violated(#condition); \
    } while (0)

bool same_bytes(const std::uint8_t* a, const std::uint8_t* b, std::size_t n) {
    return n == 0 || std::memcmp(a, b, n) == 0;
}


// The store line of `bet` (without its '\n') parses back to `bet`.
void check_store_round_trip(const Bet& bet) {
    std::string line;
    append_store_line(line, bet);
    CHECK(!line.empty() && line.back() == '\n');
    line.pop_back();
    CHECK(line.find_first_of("\r\n") == std::string::npos || bet_problem(bet).has_value());
    Bet again;
    CHECK(parse_store_line(line, again));
    CHECK(again == bet);
    std::string second;
    append_store_line(second, again);
    second.pop_back();
    CHECK(second == line); // the store rendering is canonical
}

// A valid bet survives the wire: one record encodes and decodes back to it.
// (Names ending in a space cannot: the padding strips them. Not checked here.)
void check_wire_round_trip(const Bet& bet) {
    if (bet_problem(bet)) return;
    std::uint8_t record[kBetSize];
    encode_bet(bet, record);
    const auto decoded = decode_bet(record, bet.agency);
    CHECK(decoded.ok());
    CHECK(decoded.value() == bet);
}

void check_bet_record(const std::uint8_t* record, std::uint32_t agency) {
    const auto bet = decode_bet(record, agency);
    if (!bet.ok()) {
        CHECK(bet.error() == ErrorCode::invalid_bet);
        CHECK(!bet.reason().empty());
        return;
    }
    CHECK(!bet_problem(bet.value()));
    CHECK(spec_valid(bet.value()));
    CHECK(bet.value().agency == agency);
    std::uint8_t again[kBetSize];
    encode_bet(bet.value(), again);
    CHECK(same_bytes(again, record, kBetSize)); // the record encoding is canonical
    check_store_round_trip(bet.value());
}

void fuzz_request(const std::uint8_t* data, std::size_t size) {
    if (size < kRequestHeaderSize) return;
    const auto header = decode_request_header(data);
    if (!header.ok()) {
        CHECK(header.error() == ErrorCode::malformed_frame);
        CHECK(!header.reason().empty());
        return;
    }
    const RequestHeader& h = header.value();
    const auto head = encode_request_header(h);
    CHECK(same_bytes(head.data(), data, kRequestHeaderSize));
    const std::size_t payload = payload_size(h);
    CHECK(kRequestHeaderSize + payload <= kMaxFrame);
    switch (h.type) {
    case RequestType::bets: // any `first` in range: only the coordinator can tell a gap
        CHECK(h.count >= 1 && h.count <= kMaxBetsPerFrame);
        CHECK(std::uint64_t{h.first} + h.count <= UINT32_MAX);
        CHECK(payload == h.count * kBetSize);
        break;
    case RequestType::done:
    case RequestType::winners: {
        CHECK(h.count == 0 && h.first == 0 && payload == 0);
        const Bytes frame = encode_request(h.type, h.agency);
        CHECK(frame.size() == kRequestHeaderSize && same_bytes(frame.data(), data, kRequestHeaderSize));
        break;
    }
    case RequestType::echo:
        CHECK(payload == h.count && h.count <= kMaxEchoPayload);
        break;
    case RequestType::open:
        CHECK(h.first == 0 && h.count >= 1 && h.count <= kMaxSourceName && payload == h.count);
        break;
    }
    if (size < kRequestHeaderSize + payload) return;
    const std::uint8_t* body = data + kRequestHeaderSize;
    const std::string_view text(reinterpret_cast<const char*>(body), payload);

    if (h.type == RequestType::echo && h.agency == 0 && h.first == 0) {
        const Bytes frame = encode_echo_frame(text);
        CHECK(frame.size() == kRequestHeaderSize + payload && same_bytes(frame.data(), data, frame.size()));
    }
    if (h.type == RequestType::open) {
        // The header does not judge the name (the coordinator does); the frame re-encodes.
        const Bytes frame = encode_open_frame(h.agency, text);
        CHECK(frame.size() == kRequestHeaderSize + payload && same_bytes(frame.data(), data, frame.size()));
        CHECK(is_valid_source_name(text) == spec_valid_source_name(text));
    }
    if (h.type != RequestType::bets) return;

    const auto bets = decode_bets(h, body);
    if (!bets.ok()) {
        CHECK(bets.error() == ErrorCode::invalid_bet);
        // All-or-nothing: some record on its own is invalid too.
        bool some_invalid = false;
        for (std::size_t i = 0; i < h.count && !some_invalid; ++i)
            some_invalid = !decode_bet(body + i * kBetSize, h.agency).ok();
        CHECK(some_invalid);
        return;
    }
    CHECK(bets.value().size() == h.count);
    for (const Bet& bet : bets.value()) {
        CHECK(!bet_problem(bet));
        CHECK(spec_valid(bet));
        CHECK(bet.agency == h.agency);
        check_store_round_trip(bet);
    }
    // Re-encoding gives the same bytes back, and decoding those the same bets.
    const Bytes frame = encode_bets_frame(h.agency, h.first, bets.value());
    CHECK(frame.size() == kRequestHeaderSize + payload);
    CHECK(same_bytes(frame.data(), data, frame.size()));
    const auto again = decode_request_header(frame.data());
    CHECK(again.ok() && again.value() == h);
    const auto bets_again = decode_bets(again.value(), frame.data() + kRequestHeaderSize);
    CHECK(bets_again.ok() && bets_again.value() == bets.value());
}

void fuzz_reply(const std::uint8_t* data, std::size_t size) {
    if (size < kReplyHeaderSize) return;
    const auto header = decode_reply_header(data);
    if (!header.ok()) {
        CHECK(header.error() == ErrorCode::malformed_frame);
        return;
    }
    const ReplyHeader& h = header.value();
    const auto head = encode_reply_header(h);
    CHECK(same_bytes(head.data(), data, kReplyHeaderSize));
    const Bytes reply = encode_reply(h.type, h.value);
    CHECK(reply.size() == kReplyHeaderSize && same_bytes(reply.data(), data, kReplyHeaderSize));
    if (h.type == ReplyType::resume && size >= kReplyHeaderSize + kDigestSize) {
        const Digest digest = get_u64(data + kReplyHeaderSize);
        const Bytes resume = encode_resume_reply(h.value, digest);
        CHECK(resume.size() == kReplyHeaderSize + kDigestSize && same_bytes(resume.data(), data, resume.size()));
        std::uint8_t again[kDigestSize];
        put_u64(again, digest);
        CHECK(same_bytes(again, data + kReplyHeaderSize, kDigestSize));
    }
    if (h.type != ReplyType::winners) return;

    // As many documents as the reply announces, or as the input holds.
    const std::size_t available = (size - kReplyHeaderSize) / kDocumentSize;
    const std::size_t count = std::min<std::size_t>(h.value, available);
    const auto documents = decode_documents(data + kReplyHeaderSize, count);
    if (!documents.ok()) {
        CHECK(documents.error() == ErrorCode::malformed_frame);
        return;
    }
    CHECK(documents.value().size() == count);
    for (const std::string& document : documents.value()) CHECK(is_valid_document(document));
    const Bytes again = encode_winners_reply(documents.value());
    CHECK(again.size() == kReplyHeaderSize + count * kDocumentSize);
    CHECK(same_bytes(again.data() + kReplyHeaderSize, data + kReplyHeaderSize, count * kDocumentSize));
    const auto decoded_again = decode_documents(again.data() + kReplyHeaderSize, count);
    CHECK(decoded_again.ok() && decoded_again.value() == documents.value());
}

// What a message's body may be, by type: BETS a hash per bet and then lines,
// OPEN the source name (count bytes), every other type nothing.
bool body_fits(const RequestHeader& header, std::uint32_t length) {
    if (header.type == RequestType::bets) return length >= header.count * 8u;
    if (header.type == RequestType::open) return length == header.count;
    return length == 0;
}

void fuzz_ipc(const std::uint8_t* data, std::size_t size) {
    std::string inbox(reinterpret_cast<const char*>(data), size);
    ipc::Request request;
    for (;;) {
        const std::string before = inbox;
        const ipc::Parse parse = ipc::take_request(inbox, request);
        const auto* bytes = reinterpret_cast<const std::uint8_t*>(before.data());
        if (parse != ipc::Parse::ok) {
            CHECK(inbox == before); // incomplete or invalid leaves the inbox alone
            if (before.size() < ipc::kRequestHeaderSize) {
                CHECK(parse == ipc::Parse::incomplete);
                return;
            }
            const auto header = decode_request_header(bytes);
            const std::uint32_t length = get_u32(bytes + kRequestHeaderSize + 4);
            const bool sane = header.ok() && length <= ipc::kMaxBody && body_fits(header.value(), length);
            if (parse == ipc::Parse::incomplete) CHECK(sane && before.size() < ipc::kRequestHeaderSize + length);
            else CHECK(!sane);
            return;
        }
        const std::size_t length = get_u32(bytes + kRequestHeaderSize + 4);
        const std::size_t used = ipc::kRequestHeaderSize + length;
        CHECK(length <= ipc::kMaxBody);
        CHECK(before.size() == inbox.size() + used);
        CHECK(inbox == before.substr(used));
        CHECK(request.source == get_u32(bytes + kRequestHeaderSize));
        if (request.header.type == RequestType::bets) {
            CHECK(request.hashes.size() == request.header.count && request.name.empty());
            CHECK(request.lines.size() == length - 8 * request.hashes.size());
        } else {
            CHECK(request.hashes.empty() && request.lines.empty() && request.name.size() == length);
        }
        // The message re-encodes to the bytes it was taken from.
        CHECK(before.compare(0, used, ipc_bytes(request)) == 0);
    }
}

void fuzz_text(const std::uint8_t* data, std::size_t size) {
    const std::string_view line(reinterpret_cast<const char*>(data), size);

    std::vector<std::string> fields;
    if (split_csv_line(line, fields)) {
        CHECK(!fields.empty());
        // Rendering the fields and splitting again gives the same fields, and
        // rendering those again gives the same text (QUOTE_MINIMAL is canonical).
        std::string rendered;
        for (std::size_t i = 0; i < fields.size(); ++i) {
            if (i) rendered.push_back(',');
            append_csv_field(rendered, fields[i]);
        }
        std::vector<std::string> again;
        CHECK(split_csv_line(rendered, again));
        CHECK(again == fields);
        std::string rendered_again;
        for (std::size_t i = 0; i < again.size(); ++i) {
            if (i) rendered_again.push_back(',');
            append_csv_field(rendered_again, again[i]);
        }
        CHECK(rendered_again == rendered);
    }

    if (const auto number = parse_bet_number(line)) {
        CHECK(*number <= kMaxBetNumber);
        CHECK(line.size() >= 1 && line.size() <= 4);
        CHECK(std::to_string(*number) == line.substr(line.find_first_not_of('0') == std::string_view::npos
                                                          ? line.size() - 1
                                                          : line.find_first_not_of('0')));
    }
    CHECK(!name_problem(line) == spec_valid_utf8_name(line)); // differential: two UTF-8 validators
    CHECK(is_valid_source_name(line) == spec_valid_source_name(line));

    Bet bet;
    if (parse_store_line(line, bet)) {
        check_store_round_trip(bet); // any line it accepts is a fixed point after one render
        CHECK(!bet_problem(bet) == spec_valid(bet));
        check_wire_round_trip(bet);
    }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size > 4 * kMaxFrame) return -1; // the interesting structure is all in the first frame
    fuzz_request(data, size);
    fuzz_reply(data, size);
    if (size >= kRequestHeaderSize + kBetSize) {
        // A record behind any header, so bet validation is reached without one.
        const auto agency = get_u32(data + 2);
        check_bet_record(data + kRequestHeaderSize, agency);
    }
    fuzz_ipc(data, size);
    fuzz_text(data, size);
    return 0;
}
