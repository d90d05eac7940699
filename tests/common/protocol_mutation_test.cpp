// Deterministic mutation testing of the decoders (CONTRACT.md §5 wire codec, the CSV
// store line reader): valid frames and lines are mutated many times with a
// fixed-seed std::mt19937 (bit flips, interesting byte values, truncation,
// extension, header fields set to edge values) and every result must decode
// to a valid value that re-encodes to the same bytes, or to a documented
// error. The randomised sibling is tests/fuzz (libFuzzer, `make fuzz`).
#include "common/bet.hpp"
#include "common/bet_store.hpp"
#include "common/csv.hpp"
#include "common/protocol.hpp"
#include "spec_rules.hpp"

#include "../support/test_support.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <string_view>
#include <vector>

using namespace wire;
using spec_rules::spec_valid;
using spec_rules::spec_valid_source_name;
using spec_rules::spec_valid_utf8_name;
using test_support::sample_bets;

namespace {

constexpr std::uint32_t kSeed = 20261126;

// Interesting byte values: boundaries, UTF-8 lead bytes, CSV syntax, digits.
constexpr std::uint8_t kInterestingBytes[] = {0x00, 0xFF, 0x80, 0xC0, ',', '"', ' ', '\n', '\r', 0x7F,
                                              '0',  '9',  '-',  0xC2, 0xED, 0xF4, 0xE0, 0xF0, 0x01, 'a'};
constexpr std::uint32_t kInterestingInts[] = {0, 1, 2, 3, 4, 5, 6, 55, 56, 57, 63, 64, 65, 145, 146, 8179, 8180, 8181,
                                              9999, 10000, 0x7FFF, 0x8000, 0xFFFF, 0x10000, 0x7FFFFFFF,
                                              0x80000000u, 0xFFFFFFFFu};

// mt19937's output is fixed by the standard; the distributions are not, so
// draw with a plain modulo to stay identical on every standard library.
std::size_t below(std::mt19937& rng, std::size_t n) { return n == 0 ? 0 : rng() % n; }

template <typename T, std::size_t N>
const T& pick(std::mt19937& rng, const T (&items)[N]) {
    return items[below(rng, N)];
}

// One random edit of `bytes`.
void mutate_once(std::mt19937& rng, std::vector<std::uint8_t>& bytes, std::size_t header_size) {
    const std::size_t choice = below(rng, 10);
    if (bytes.empty() && choice < 7) {
        bytes.push_back(static_cast<std::uint8_t>(rng()));
        return;
    }
    switch (choice) {
    case 0:
    case 1: // flip one bit
        bytes[below(rng, bytes.size())] ^= static_cast<std::uint8_t>(1u << below(rng, 8));
        break;
    case 2:
    case 3: // set one byte to an interesting value
        bytes[below(rng, bytes.size())] = pick(rng, kInterestingBytes);
        break;
    case 4: // set one byte to anything
        bytes[below(rng, bytes.size())] = static_cast<std::uint8_t>(rng());
        break;
    case 5: // an edge value into a header field (u16 or u32, big-endian)
        if (bytes.size() >= header_size && header_size >= 6) {
            const std::uint32_t value = pick(rng, kInterestingInts);
            const std::size_t at = below(rng, header_size - 1);
            if (below(rng, 2) == 0 || at + 4 > header_size) put_u16(&bytes[at], static_cast<std::uint16_t>(value));
            else put_u32(&bytes[at], value);
        } else {
            bytes[below(rng, bytes.size())] = pick(rng, kInterestingBytes);
        }
        break;
    case 6: // truncate
        bytes.resize(below(rng, bytes.size() + 1));
        break;
    case 7: { // extend with interesting or random bytes
        const std::size_t extra = 1 + below(rng, 24);
        for (std::size_t i = 0; i < extra; ++i)
            bytes.push_back(below(rng, 2) ? pick(rng, kInterestingBytes) : static_cast<std::uint8_t>(rng()));
        break;
    }
    case 8: // insert a byte in the middle (shifts every field after it)
        bytes.insert(bytes.begin() + static_cast<std::ptrdiff_t>(below(rng, bytes.size() + 1)),
                     pick(rng, kInterestingBytes));
        break;
    default: // delete a byte in the middle
        if (!bytes.empty()) bytes.erase(bytes.begin() + static_cast<std::ptrdiff_t>(below(rng, bytes.size())));
        break;
    }
}

void mutate(std::mt19937& rng, std::vector<std::uint8_t>& bytes, std::size_t header_size) {
    const std::size_t edits = 1 + below(rng, 3);
    for (std::size_t i = 0; i < edits; ++i) mutate_once(rng, bytes, header_size);
}

std::string hex(const std::uint8_t* data, std::size_t size) {
    std::string out;
    char pair[3];
    for (std::size_t i = 0; i < size; ++i) {
        std::snprintf(pair, sizeof pair, "%02x", data[i]);
        out += pair;
    }
    return out;
}

// Collects broken invariants; reports the first few with the input that broke them.
class Checker {
public:
    void set_input(std::size_t iteration, const std::uint8_t* data, std::size_t size) {
        iteration_ = iteration, data_ = data, size_ = size;
    }
    void operator()(bool condition, const char* invariant) {
        if (condition) return;
        if (++failures_ <= 5)
            ADD_FAILURE() << "invariant broken: " << invariant << "\n  iteration " << iteration_ << ", "
                          << size_ << " bytes: " << hex(data_, size_);
    }
    int failures() const { return failures_; }

private:
    std::size_t iteration_ = 0;
    const std::uint8_t* data_ = nullptr;
    std::size_t size_ = 0;
    int failures_ = 0;
};

bool is_documented(ErrorCode code) {
    const auto value = static_cast<std::uint32_t>(code);
    return value >= 1 && value <= 8;
}

std::string store_line(const Bet& bet) {
    std::string line;
    append_store_line(line, bet);
    line.pop_back(); // '\n'
    return line;
}

struct Tally {
    std::size_t cases = 0, header_ok = 0, header_rejected = 0, bets_ok = 0, bets_rejected = 0, opens = 0, resumes = 0;
};

// An OPEN frame whose payload is all there: it is the name, byte for byte.
void check_open(const RequestHeader& h, const std::uint8_t* frame, Checker& check, Tally& tally) {
    ++tally.opens;
    const std::string_view name(reinterpret_cast<const char*>(frame + kRequestHeaderSize), h.count);
    const Bytes again = encode_open_frame(h.agency, name);
    check(again.size() == kRequestHeaderSize + h.count && std::equal(again.begin(), again.end(), frame),
          "OPEN frame re-encodes to its bytes");
    check(is_valid_source_name(name) == spec_valid_source_name(name),
          "is_valid_source_name agrees with CONTRACT.md §5");
}

// Every invariant of one (possibly mutated) request frame.
void check_request(const std::vector<std::uint8_t>& frame, Checker& check, Tally& tally) {
    ++tally.cases;
    if (frame.size() < kRequestHeaderSize) return;
    const auto header = decode_request_header(frame.data());
    if (!header.ok()) {
        ++tally.header_rejected;
        check(header.error() == ErrorCode::malformed_frame, "a bad request header is malformed_frame");
        return;
    }
    ++tally.header_ok;
    const RequestHeader& h = header.value();
    const auto head = encode_request_header(h);
    check(std::equal(head.begin(), head.end(), frame.begin()), "request header re-encodes to its bytes");
    const std::size_t payload = payload_size(h);
    check(kRequestHeaderSize + payload <= kMaxFrame, "a decoded header fits 8 KiB");
    switch (h.type) {
    case RequestType::bets:
        check(h.count >= 1 && h.count <= kMaxBetsPerFrame, "BETS count 1..56");
        break;
    case RequestType::done:
    case RequestType::winners:
        check(h.count == 0 && h.first == 0, "DONE/WINNERS count and first 0");
        break;
    case RequestType::echo:
        check(h.count <= kMaxEchoPayload, "ECHO payload fits");
        break;
    case RequestType::open:
        check(h.first == 0 && h.count >= 1 && h.count <= kMaxSourceName, "OPEN first 0, name 1..64 bytes");
        check(payload == h.count, "OPEN payload is the name");
        break;
    }
    if (frame.size() < kRequestHeaderSize + payload) return;
    if (h.type == RequestType::open) check_open(h, frame.data(), check, tally);
    if (h.type != RequestType::bets) return;

    const std::uint8_t* body = frame.data() + kRequestHeaderSize;
    const auto bets = decode_bets(h, body);
    if (!bets.ok()) {
        ++tally.bets_rejected;
        check(is_documented(bets.error()), "decode_bets error is documented");
        check(bets.error() == ErrorCode::invalid_bet, "a bad bet is invalid_bet");
        return;
    }
    ++tally.bets_ok;
    check(bets.value().size() == h.count, "decode_bets yields count bets");
    for (const Bet& bet : bets.value()) {
        check(!bet_problem(bet).has_value(), "a decoded bet passes bet_problem");
        check(spec_valid(bet), "a decoded bet follows every CONTRACT.md §5 rule");
        check(bet.agency == h.agency, "a decoded bet has the frame's agency");
    }
    const Bytes again = encode_bets_frame(h.agency, h.first, bets.value());
    check(again.size() == kRequestHeaderSize + payload &&
              std::equal(again.begin(), again.end(), frame.begin()),
          "BETS frame re-encodes to its bytes");
    const auto bets_again = decode_bets(h, again.data() + kRequestHeaderSize);
    check(bets_again.ok() && bets_again.value() == bets.value(), "BETS frame round-trips");
    // The store keeps what the wire delivered: one line per bet, read back equal.
    for (const Bet& bet : bets.value()) {
        const std::string line = store_line(bet);
        Bet read;
        check(line.find_first_of("\r\n") == std::string::npos, "a valid bet is one store line");
        check(parse_store_line(line, read) && read == bet, "a decoded bet round-trips through the store");
    }
}

void check_reply(const std::vector<std::uint8_t>& frame, Checker& check, Tally& tally) {
    ++tally.cases;
    if (frame.size() < kReplyHeaderSize) return;
    const auto header = decode_reply_header(frame.data());
    if (!header.ok()) {
        ++tally.header_rejected;
        check(header.error() == ErrorCode::malformed_frame, "a bad reply header is malformed_frame");
        return;
    }
    ++tally.header_ok;
    const auto head = encode_reply_header(header.value());
    check(std::equal(head.begin(), head.end(), frame.begin()), "reply header re-encodes to its bytes");
    if (header.value().type == ReplyType::resume && frame.size() >= kReplyHeaderSize + kDigestSize) {
        ++tally.resumes;
        const Bytes again = encode_resume_reply(header.value().value, get_u64(frame.data() + kReplyHeaderSize));
        check(again.size() == kReplyHeaderSize + kDigestSize && std::equal(again.begin(), again.end(), frame.begin()),
              "RESUME reply re-encodes to its bytes");
    }
    if (header.value().type != ReplyType::winners) return;
    const std::size_t count =
        std::min<std::size_t>(header.value().value, (frame.size() - kReplyHeaderSize) / kDocumentSize);
    const auto documents = decode_documents(frame.data() + kReplyHeaderSize, count);
    if (!documents.ok()) {
        ++tally.bets_rejected;
        check(documents.error() == ErrorCode::malformed_frame, "a bad document is malformed_frame");
        return;
    }
    ++tally.bets_ok;
    check(documents.value().size() == count, "decode_documents yields count documents");
    for (const std::string& document : documents.value())
        check(is_valid_document(document), "a decoded document is 1..8 digits");
    const Bytes again = encode_winners_reply(documents.value());
    check(std::equal(again.begin() + kReplyHeaderSize, again.end(), frame.begin() + kReplyHeaderSize),
          "documents re-encode to their bytes");
}

template <typename CheckFn>
Tally run_mutations(const std::vector<Bytes>& originals, std::size_t iterations, std::size_t header_size,
                    std::uint32_t seed, CheckFn check_one) {
    std::mt19937 rng(seed);
    Checker check;
    Tally tally;
    for (const Bytes& original : originals) { // the originals themselves first
        check.set_input(0, original.data(), original.size());
        check_one(original, check, tally);
    }
    Bytes frame;
    for (std::size_t i = 0; i < iterations; ++i) {
        frame = originals[below(rng, originals.size())];
        mutate(rng, frame, header_size);
        check.set_input(i + 1, frame.data(), frame.size());
        check_one(frame, check, tally);
    }
    EXPECT_EQ(check.failures(), 0) << "broken invariants (the first 5 are reported above)";
    return tally;
}

} // namespace

TEST(ProtocolMutation, RequestFramesDecodeToValidValuesOrDocumentedErrors) {
    const std::vector<Bytes> originals = {
        encode_bets_frame(1, 0, sample_bets(1, 1)),
        encode_bets_frame(7, 3, sample_bets(7, 5)),
        encode_bets_frame(65535, 4294967295u - kMaxBetsPerFrame, sample_bets(65535, kMaxBetsPerFrame)),
        encode_open_frame(3, "agency-3.csv"),
        encode_open_frame(65535, std::string(kMaxSourceName, 'z')),
        encode_open_frame(1, "env-00000042-7574"),
        encode_request(RequestType::done, 1),
        encode_request(RequestType::winners, 65535),
        encode_echo_frame(""),
        encode_echo_frame("hola, \"mundo\"\n"),
    };
    for (const Bytes& frame : originals) { // the starting points are valid
        const auto header = decode_request_header(frame.data());
        ASSERT_TRUE(header.ok()) << hex(frame.data(), kRequestHeaderSize);
        ASSERT_EQ(frame.size(), kRequestHeaderSize + payload_size(header.value()));
        if (header.value().type == RequestType::bets) {
            const auto bets = decode_bets(header.value(), frame.data() + kRequestHeaderSize);
            ASSERT_TRUE(bets.ok()) << bets.reason();
            ASSERT_EQ(bets.value(), sample_bets(header.value().agency, header.value().count));
        }
    }
    const Tally tally = run_mutations(originals, 160000, kRequestHeaderSize, kSeed,
                                      [](const Bytes& frame, Checker& check, Tally& t) {
                                          check_request(frame, check, t);
                                      });
    // The mutations reach every outcome, not just the first rejection.
    EXPECT_GT(tally.header_ok, 10000u);
    EXPECT_GT(tally.header_rejected, 10000u);
    EXPECT_GT(tally.bets_ok, 1000u);
    EXPECT_GT(tally.bets_rejected, 1000u);
    EXPECT_GT(tally.opens, 1000u);
    RecordProperty("cases", static_cast<int>(tally.cases));
}

TEST(ProtocolMutation, RepliesDecodeToValidValuesOrDocumentedErrors) {
    const std::vector<Bytes> originals = {
        encode_reply(ReplyType::ack, 56),
        encode_reply(ReplyType::ack, 0),
        encode_error(ErrorCode::invalid_bet),
        encode_error(ErrorCode::shutting_down),
        encode_error(ErrorCode::fenced),
        encode_resume_reply(0, 0),
        encode_resume_reply(56, 0x0123456789ABCDEFu),
        encode_resume_reply(0xFFFFFFFFu, ~Digest{0}),
        encode_winners_reply({}),
        encode_winners_reply({"30904465"}),
        encode_winners_reply({"00000042", "7", "12345678", "1"}),
    };
    for (const Bytes& frame : originals) {
        const auto header = decode_reply_header(frame.data());
        ASSERT_TRUE(header.ok()) << hex(frame.data(), frame.size());
        if (header.value().type == ReplyType::winners) {
            ASSERT_TRUE(decode_documents(frame.data() + kReplyHeaderSize, header.value().value).ok());
        }
    }
    const Tally tally = run_mutations(originals, 40000, kReplyHeaderSize, kSeed + 1,
                                      [](const Bytes& frame, Checker& check, Tally& t) {
                                          check_reply(frame, check, t);
                                      });
    EXPECT_GT(tally.header_ok, 1000u);
    EXPECT_GT(tally.header_rejected, 1000u);
    EXPECT_GT(tally.bets_ok, 1000u);
    EXPECT_GT(tally.bets_rejected, 100u);
    EXPECT_GT(tally.resumes, 1000u);
}

TEST(ProtocolMutation, StoreLinesSplitAndParseToRoundTrippingValues) {
    std::vector<Bytes> originals;
    for (const Bet& bet : sample_bets(3, 5)) {
        const std::string line = store_line(bet);
        originals.emplace_back(line.begin(), line.end());
    }
    for (const Bytes& line : originals) {
        Bet bet;
        ASSERT_TRUE(parse_store_line(std::string_view(reinterpret_cast<const char*>(line.data()), line.size()), bet));
        ASSERT_FALSE(bet_problem(bet));
    }
    const std::string csv = "\"a,b\",\"c\"\"d\",,\"\",e";
    originals.emplace_back(csv.begin(), csv.end());

    std::size_t split_ok = 0, parsed = 0, parsed_valid = 0;
    run_mutations(originals, 50000, 0, kSeed + 2, [&](const Bytes& bytes, Checker& check, Tally& t) {
        ++t.cases;
        const std::string_view line(reinterpret_cast<const char*>(bytes.data()), bytes.size());
        check(!name_problem(line) == spec_valid_utf8_name(line),
              "name_problem agrees with the CONTRACT.md §5 name rule");
        std::vector<std::string> fields;
        if (split_csv_line(line, fields)) {
            ++split_ok;
            check(!fields.empty(), "a split line has a field");
            std::string rendered;
            for (std::size_t i = 0; i < fields.size(); ++i) {
                if (i) rendered.push_back(',');
                append_csv_field(rendered, fields[i]);
            }
            std::vector<std::string> again;
            check(split_csv_line(rendered, again) && again == fields, "CSV fields round-trip");
        }
        Bet bet;
        if (!parse_store_line(line, bet)) return;
        ++parsed;
        const std::string rendered = store_line(bet);
        Bet again;
        check(parse_store_line(rendered, again) && again == bet, "a parsed store line round-trips");
        check(store_line(again) == rendered, "the store rendering is canonical");
        check(!bet_problem(bet) == spec_valid(bet), "bet_problem agrees with the CONTRACT.md §5 rules");
        if (!bet_problem(bet)) {
            ++parsed_valid;
            check(rendered.find_first_of("\r\n") == std::string::npos, "a valid bet is one store line");
        }
    });
    EXPECT_GT(split_ok, 10000u);
    EXPECT_GT(parsed, 5000u);
    EXPECT_GT(parsed_valid, 1000u);
}
