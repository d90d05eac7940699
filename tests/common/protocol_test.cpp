// Wire codec (CONTRACT.md §5). Expected bytes are assembled by hand from the
// layout tables of PROTOCOL.md, never by calling the encoder under test.
#include "common/protocol.hpp"

#include "../support/test_support.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <optional>
#include <type_traits>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

using namespace wire;

namespace {

using test_support::make_bet;
using test_support::repeat;

// `value` as `width` big-endian bytes appended to `out`.
void append_be(Bytes& out, std::uint64_t value, int width) {
    for (int shift = 8 * (width - 1); shift >= 0; shift -= 8) out.push_back(static_cast<std::uint8_t>(value >> shift));
}

// CONTRACT.md §5 request header: type u16 | agency u32 | first u32 | count u16, big-endian.
Bytes header_bytes(std::uint16_t type, std::uint32_t agency, std::uint32_t first, std::uint16_t count) {
    Bytes out;
    append_be(out, type, 2);
    append_be(out, agency, 4);
    append_be(out, first, 4);
    append_be(out, count, 2);
    return out;
}

Bytes operator+(Bytes head, std::string_view tail) {
    head.insert(head.end(), tail.begin(), tail.end());
    return head;
}

// CONTRACT.md §5 bet record: first 64 | last 64 | document 8 | birthdate 8 | number u16,
// text fields right-padded with 0x20. Fields are copied raw (may be invalid).
Bytes record_bytes(std::string_view first, std::string_view last, std::string_view document,
                   std::string_view birthdate8, std::uint16_t number) {
    Bytes record(146, 0x20);
    std::memcpy(&record[0], first.data(), std::min<std::size_t>(first.size(), 64));
    std::memcpy(&record[64], last.data(), std::min<std::size_t>(last.size(), 64));
    std::memcpy(&record[128], document.data(), std::min<std::size_t>(document.size(), 8));
    std::memcpy(&record[136], birthdate8.data(), std::min<std::size_t>(birthdate8.size(), 8));
    record[144] = static_cast<std::uint8_t>(number >> 8);
    record[145] = static_cast<std::uint8_t>(number & 0xFF);
    return record;
}

Bet sample_bet(std::uint32_t agency = 1) {
    return make_bet(agency, "Santiago Lionel", "Lorca", "30904465", "1999-03-17", 7574);
}

// The error of a header that must not decode; each comes with a reason to log.
ErrorCode header_error(const Bytes& bytes) {
    auto result = decode_request_header(bytes.data());
    EXPECT_FALSE(result.ok());
    EXPECT_FALSE(result.reason().empty());
    return result.error();
}

// A header that must decode.
RequestHeader header_of(const Bytes& bytes) {
    auto result = decode_request_header(bytes.data());
    EXPECT_TRUE(result.ok()) << result.reason();
    return result.ok() ? result.value() : RequestHeader{};
}

// Decodes one hand-made record; returns the error (or nothing when valid).
std::optional<ErrorCode> record_error(const Bytes& record, std::uint32_t agency = 1) {
    auto result = decode_bet(record.data(), agency);
    if (result.ok()) return std::nullopt;
    return result.error();
}

} // namespace

// ---------------------------------------------------------------- constants

TEST(CommonProtocol, SizesMatchSpec) {
    EXPECT_EQ(kRequestHeaderSize, 12u);
    EXPECT_EQ(kReplyHeaderSize, 6u);
    EXPECT_EQ(kBetSize, 146u);
    EXPECT_EQ(kMaxBetsPerFrame, 56u);
    EXPECT_EQ(kMaxFrame, 8192u);
    EXPECT_EQ(kMaxSourceName, 64u);
    EXPECT_EQ(kDigestSize, 8u);
    EXPECT_LE(12u + kMaxBetsPerFrame * 146u, 8192u);
    EXPECT_GT(12u + (kMaxBetsPerFrame + 1) * 146u, 8192u);
}

TEST(CommonProtocol, IntegersAreBigEndian) {
    std::uint8_t buffer[4] = {};
    put_u16(buffer, 0x1234);
    EXPECT_EQ(buffer[0], 0x12);
    EXPECT_EQ(buffer[1], 0x34);
    put_u32(buffer, 0xA1B2C3D4u);
    EXPECT_EQ(buffer[0], 0xA1);
    EXPECT_EQ(buffer[1], 0xB2);
    EXPECT_EQ(buffer[2], 0xC3);
    EXPECT_EQ(buffer[3], 0xD4);
    const std::uint8_t in[4] = {0xFE, 0xDC, 0xBA, 0x98};
    EXPECT_EQ(get_u16(in), 0xFEDCu);
    EXPECT_EQ(get_u32(in), 0xFEDCBA98u);
}

TEST(CommonProtocol, U64IsBigEndian) {
    std::uint8_t buffer[8] = {};
    put_u64(buffer, 0x0102030405060708u);
    EXPECT_EQ(Bytes(buffer, buffer + 8), (Bytes{0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08}));
    const std::uint8_t in[8] = {0xFE, 0xDC, 0xBA, 0x98, 0x76, 0x54, 0x32, 0x10};
    EXPECT_EQ(get_u64(in), 0xFEDCBA9876543210u);
}

TEST(CommonProtocol, U64RoundTripsItsExtremes) {
    for (std::uint64_t value : {std::uint64_t{0}, std::uint64_t{1}, std::uint64_t{0x8000000000000000u},
                                std::uint64_t{0x00000000FFFFFFFFu}, std::uint64_t{0xFFFFFFFF00000000u}, ~std::uint64_t{0}}) {
        SCOPED_TRACE(value);
        std::uint8_t buffer[8] = {};
        put_u64(buffer, value);
        EXPECT_EQ(get_u64(buffer), value);
    }
}

// ---------------------------------------------------------------- headers

TEST(CommonProtocol, HandAssembledBetsHeaderDecodes) {
    // type 1, agency 0x0000ABCD, first 0x00010203, count 2
    const Bytes bytes{0x00, 0x01, 0x00, 0x00, 0xAB, 0xCD, 0x00, 0x01, 0x02, 0x03, 0x00, 0x02};
    const RequestHeader header = header_of(bytes);
    EXPECT_EQ(header.type, RequestType::bets);
    EXPECT_EQ(header.agency, 0xABCDu);
    EXPECT_EQ(header.first, 0x010203u);
    EXPECT_EQ(header.count, 2u);
    EXPECT_EQ(payload_size(header), 2u * 146u);
}

TEST(CommonProtocol, EncodeRequestHeaderMatchesHandBytes) {
    const auto bytes = encode_request_header(RequestHeader{RequestType::bets, 65535, 258, 56});
    const Bytes expected{0x00, 0x01, 0x00, 0x00, 0xFF, 0xFF, 0x00, 0x00, 0x01, 0x02, 0x00, 0x38};
    EXPECT_EQ(Bytes(bytes.begin(), bytes.end()), expected);
}

TEST(CommonProtocol, EncodeReplyHeaderMatchesHandBytes) {
    const auto bytes = encode_reply_header(ReplyHeader{ReplyType::ack, 0x01020304});
    const Bytes expected{0x00, 0x01, 0x01, 0x02, 0x03, 0x04};
    EXPECT_EQ(Bytes(bytes.begin(), bytes.end()), expected);
}

TEST(CommonProtocol, UnknownRequestTypesAreMalformed) {
    for (std::uint16_t type : {std::uint16_t{0}, std::uint16_t{6}, std::uint16_t{0xFFFF}}) {
        SCOPED_TRACE(type);
        EXPECT_EQ(header_error(header_bytes(type, 1, 0, 0)), ErrorCode::malformed_frame);
    }
}

TEST(CommonProtocol, BetsWithZeroCountIsMalformed) {
    EXPECT_EQ(header_error(header_bytes(1, 1, 0, 0)), ErrorCode::malformed_frame);
}

// CONTRACT.md §6: a frame whose positions would pass the protocol's 32-bit
// range is malformed; the last one whose end (the stored count it makes)
// still fits in a u32 is fine.
TEST(CommonProtocol, BetsPastThe32BitRangeOfPositionsIsMalformed) {
    EXPECT_EQ(header_of(header_bytes(1, 1, 0xFFFFFFFFu - 56, 56)).first, 0xFFFFFFFFu - 56);
    EXPECT_EQ(header_error(header_bytes(1, 1, 0xFFFFFFFFu - 55, 56)), ErrorCode::malformed_frame);
    EXPECT_EQ(header_error(header_bytes(1, 1, 0xFFFFFFFFu, 1)), ErrorCode::malformed_frame);
}

TEST(CommonProtocol, BetsWith57BetsIsOver8KiB) {
    EXPECT_EQ(header_error(header_bytes(1, 1, 0, 57)), ErrorCode::malformed_frame);
    EXPECT_EQ(header_error(header_bytes(1, 1, 0, 0xFFFF)), ErrorCode::malformed_frame);
}

TEST(CommonProtocol, BetsWithOneTo56BetsIsAccepted) {
    for (std::uint16_t count : {std::uint16_t{1}, std::uint16_t{55}, std::uint16_t{56}}) {
        SCOPED_TRACE(count);
        EXPECT_EQ(payload_size(header_of(header_bytes(1, 1, 0, count))), count * 146u);
    }
}

TEST(CommonProtocol, BetsAcceptAnyFirstPositionWithinTheRange) {
    // The header cannot tell a gap: only the coordinator knows what the source holds.
    for (std::uint32_t first : {0u, 1u, 56u, 0x7FFFFFFFu, 0x80000000u, 0xFFFFFFFFu - 3}) {
        SCOPED_TRACE(first);
        EXPECT_EQ(header_of(header_bytes(1, 7, first, 3)), (RequestHeader{RequestType::bets, 7, first, 3}));
    }
}

TEST(CommonProtocol, EchoPayloadLimitIs8180) {
    EXPECT_EQ(payload_size(header_of(header_bytes(4, 0, 0, 8180))), 8180u);
    EXPECT_EQ(header_error(header_bytes(4, 0, 0, 8181)), ErrorCode::malformed_frame);
    EXPECT_EQ(header_error(header_bytes(4, 0, 0, 0xFFFF)), ErrorCode::malformed_frame);
}

TEST(CommonProtocol, EchoWithEmptyPayloadIsAccepted) {
    EXPECT_EQ(payload_size(header_of(header_bytes(4, 0, 0, 0))), 0u);
}

TEST(CommonProtocol, DoneAndWinnersWithNonzeroCountOrFirstAreMalformed) {
    for (std::uint16_t type : {std::uint16_t{2}, std::uint16_t{3}}) {
        SCOPED_TRACE(type);
        EXPECT_EQ(header_error(header_bytes(type, 1, 0, 1)), ErrorCode::malformed_frame);
        EXPECT_EQ(header_error(header_bytes(type, 1, 1, 0)), ErrorCode::malformed_frame);
        EXPECT_EQ(header_error(header_bytes(type, 1, 0x80000000u, 0)), ErrorCode::malformed_frame);
        EXPECT_EQ(payload_size(header_of(header_bytes(type, 1, 0, 0))), 0u);
    }
}

TEST(CommonProtocol, OpenWithNonzeroFirstIsMalformed) {
    for (std::uint32_t first : {1u, 0x80000000u, 0xFFFFFFFFu}) {
        SCOPED_TRACE(first);
        EXPECT_EQ(header_error(header_bytes(5, 1, first, 12)), ErrorCode::malformed_frame);
    }
}

TEST(CommonProtocol, OpenNameOfNoBytesOrOver64IsMalformed) {
    for (std::uint16_t count : {std::uint16_t{0}, std::uint16_t{65}, std::uint16_t{0xFFFF}}) {
        SCOPED_TRACE(count);
        EXPECT_EQ(header_error(header_bytes(5, 1, 0, count)), ErrorCode::malformed_frame);
    }
}

TEST(CommonProtocol, OpenNameOfOneTo64BytesIsAccepted) {
    for (std::uint16_t count : {std::uint16_t{1}, std::uint16_t{12}, std::uint16_t{64}}) {
        SCOPED_TRACE(count);
        const RequestHeader header = header_of(header_bytes(5, 9, 0, count));
        EXPECT_EQ(header, (RequestHeader{RequestType::open, 9, 0, count}));
        EXPECT_EQ(payload_size(header), count);
    }
}

TEST(CommonProtocol, UnknownReplyTypesAreRejected) {
    for (std::uint16_t type : {std::uint16_t{0}, std::uint16_t{6}, std::uint16_t{0xFFFF}}) {
        const Bytes bytes{static_cast<std::uint8_t>(type >> 8), static_cast<std::uint8_t>(type), 0, 0, 0, 1};
        EXPECT_FALSE(decode_reply_header(bytes.data()).ok()) << type;
    }
}

// ---------------------------------------------------------------- request round trips

TEST(CommonProtocol, BetsFrameWithOneBetRoundTrips) {
    const Bet bet = sample_bet(7);
    const Bytes frame = encode_bets_frame(7, 3, {bet});
    ASSERT_EQ(frame.size(), 12u + 146u);
    EXPECT_EQ(Bytes(frame.begin(), frame.begin() + 12), header_bytes(1, 7, 3, 1));

    const RequestHeader header = header_of(frame);
    EXPECT_EQ(header, (RequestHeader{RequestType::bets, 7, 3, 1}));
    auto bets = decode_bets(header, frame.data() + 12);
    ASSERT_TRUE(bets.ok()) << bets.reason();
    ASSERT_EQ(bets.value().size(), 1u);
    EXPECT_EQ(bets.value()[0], bet);
}

TEST(CommonProtocol, BetsFrameWith56BetsRoundTrips) {
    std::vector<Bet> sent;
    for (int i = 0; i < 56; ++i) {
        sent.push_back(make_bet(42, "Nombre" + std::to_string(i), "Apellido Ñandú " + std::to_string(i),
                                std::to_string(10000000 + i * 7919), "19" + std::to_string(50 + i % 50) + "-0" +
                                    std::to_string(1 + i % 9) + "-1" + std::to_string(i % 10),
                                static_cast<std::uint16_t>(i * 178)));
    }
    const Bytes frame = encode_bets_frame(42, 99, sent);
    ASSERT_EQ(frame.size(), 8188u);
    const RequestHeader header = header_of(frame);
    EXPECT_EQ(header.count, 56u);
    EXPECT_EQ(header.first, 99u);
    auto bets = decode_bets(header, frame.data() + 12);
    ASSERT_TRUE(bets.ok()) << bets.reason();
    EXPECT_EQ(bets.value(), sent);
}

TEST(CommonProtocol, BetsFrameCarriesItsFirstPosition) {
    for (std::uint32_t first : {0u, 0xFFFFFFFFu}) {
        SCOPED_TRACE(first);
        const Bytes frame = encode_bets_frame(2, first, {sample_bet(2)});
        EXPECT_EQ(Bytes(frame.begin(), frame.begin() + 12), header_bytes(1, 2, first, 1));
    }
}

TEST(CommonProtocol, OpenFrameMatchesHandBytesAndRoundTrips) {
    const Bytes frame = encode_open_frame(3, "agency-3.csv");
    EXPECT_EQ(frame, header_bytes(5, 3, 0, 12) + "agency-3.csv");
    const RequestHeader header = header_of(frame);
    EXPECT_EQ(header, (RequestHeader{RequestType::open, 3, 0, 12}));
    ASSERT_EQ(frame.size(), 12u + payload_size(header));
    EXPECT_EQ(std::string(frame.begin() + 12, frame.end()), "agency-3.csv");
}

TEST(CommonProtocol, OpenFrameWithA64ByteNameRoundTrips) {
    const std::string name = repeat("a.b_c-D9", 8);
    ASSERT_EQ(name.size(), 64u);
    const Bytes frame = encode_open_frame(65535, name);
    EXPECT_EQ(frame, header_bytes(5, 65535, 0, 64) + name);
    EXPECT_EQ(payload_size(header_of(frame)), 64u);
}

TEST(CommonProtocol, DoneRequestMatchesHandBytesAndRoundTrips) {
    const Bytes frame = encode_request(RequestType::done, 5);
    EXPECT_EQ(frame, header_bytes(2, 5, 0, 0));
    EXPECT_EQ(header_of(frame), (RequestHeader{RequestType::done, 5, 0, 0}));
}

TEST(CommonProtocol, WinnersRequestMatchesHandBytesAndRoundTrips) {
    const Bytes frame = encode_request(RequestType::winners, 65535);
    EXPECT_EQ(frame, header_bytes(3, 65535, 0, 0));
    EXPECT_EQ(header_of(frame), (RequestHeader{RequestType::winners, 65535, 0, 0}));
}

TEST(CommonProtocol, EchoFrameCarriesPayloadVerbatim) {
    const std::string payload("hola\0mundo|\xC3\xB1\n", 15);
    const Bytes frame = encode_echo_frame(payload);
    EXPECT_EQ(frame, header_bytes(4, 0, 0, 15) + payload);
    const RequestHeader header = header_of(frame);
    EXPECT_EQ(header, (RequestHeader{RequestType::echo, 0, 0, 15}));
    EXPECT_EQ(payload_size(header), payload.size());
}

// ---------------------------------------------------------------- replies

TEST(CommonProtocol, AckReplyRoundTrips) {
    const Bytes reply = encode_reply(ReplyType::ack, 56);
    EXPECT_EQ(reply, (Bytes{0x00, 0x01, 0x00, 0x00, 0x00, 0x38}));
    auto header = decode_reply_header(reply.data());
    ASSERT_TRUE(header.ok());
    EXPECT_EQ(header.value(), (ReplyHeader{ReplyType::ack, 56}));
}

TEST(CommonProtocol, ErrorCodesAreOneToEightWithTheirNames) {
    const struct {
        ErrorCode code;
        std::uint8_t number;
        const char* name;
    } codes[] = {
        {ErrorCode::malformed_frame, 1, "malformed frame"}, {ErrorCode::invalid_bet, 2, "invalid bet"},
        {ErrorCode::bad_agency, 3, "bad agency"},           {ErrorCode::gap, 4, "gap"},
        {ErrorCode::draw_held, 5, "draw held"},             {ErrorCode::shutting_down, 6, "shutting down"},
        {ErrorCode::storage_failure, 7, "storage failure"}, {ErrorCode::fenced, 8, "fenced"},
    };
    for (const auto& [code, number, name] : codes) {
        SCOPED_TRACE(name);
        EXPECT_EQ(static_cast<std::uint32_t>(code), number);
        EXPECT_STREQ(to_string(code), name);
    }
}

TEST(CommonProtocol, ErrorReplyRoundTripsForEveryCode) {
    for (std::uint8_t number = 1; number <= 8; ++number) {
        SCOPED_TRACE(number);
        const auto code = static_cast<ErrorCode>(number);
        const Bytes reply = encode_error(code);
        EXPECT_EQ(reply, (Bytes{0x00, 0x02, 0x00, 0x00, 0x00, number}));
        auto header = decode_reply_header(reply.data());
        ASSERT_TRUE(header.ok());
        EXPECT_EQ(header.value(), (ReplyHeader{ReplyType::error, number}));
    }
}

TEST(CommonProtocol, UnknownErrorCodeHasAName) {
    EXPECT_STREQ(to_string(static_cast<ErrorCode>(9)), "unknown error");
    EXPECT_STREQ(to_string(static_cast<ErrorCode>(0)), "unknown error");
}

TEST(CommonProtocol, ResumeReplyIsHeaderThenDigest) {
    // type 5 | value = k | u64 digest, big-endian (CONTRACT.md §5).
    const Bytes reply = encode_resume_reply(0x01020304u, 0x1122334455667788u);
    EXPECT_EQ(reply, (Bytes{0x00, 0x05, 0x01, 0x02, 0x03, 0x04, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88}));
    auto header = decode_reply_header(reply.data());
    ASSERT_TRUE(header.ok());
    EXPECT_EQ(header.value(), (ReplyHeader{ReplyType::resume, 0x01020304u}));
    EXPECT_EQ(get_u64(reply.data() + kReplyHeaderSize), 0x1122334455667788u);
}

TEST(CommonProtocol, ResumeReplyOfAnEmptySource) {
    EXPECT_EQ(encode_resume_reply(0, 0), (Bytes{0x00, 0x05, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}));
}

TEST(CommonProtocol, ResumeReplyOfTheLargestValues) {
    Bytes expected{0x00, 0x05};
    expected.resize(14, 0xFF);
    EXPECT_EQ(encode_resume_reply(0xFFFFFFFFu, ~Digest{0}), expected);
}

TEST(CommonProtocol, WinnersReplyWithNoDocuments) {
    const Bytes reply = encode_winners_reply({});
    EXPECT_EQ(reply, (Bytes{0x00, 0x03, 0x00, 0x00, 0x00, 0x00}));
    auto header = decode_reply_header(reply.data());
    ASSERT_TRUE(header.ok());
    EXPECT_EQ(header.value(), (ReplyHeader{ReplyType::winners, 0}));
    auto documents = decode_documents(reply.data() + 6, 0);
    ASSERT_TRUE(documents.ok());
    EXPECT_TRUE(documents.value().empty());
}

TEST(CommonProtocol, WinnersReplyWithTwoDocuments) {
    const Bytes reply = encode_winners_reply({"00000042", "123"});
    EXPECT_EQ(reply, (Bytes{0x00, 0x03, 0x00, 0x00, 0x00, 0x02} + "00000042123     "));
    auto header = decode_reply_header(reply.data());
    ASSERT_TRUE(header.ok());
    EXPECT_EQ(header.value(), (ReplyHeader{ReplyType::winners, 2}));
    auto documents = decode_documents(reply.data() + 6, header.value().value);
    ASSERT_TRUE(documents.ok()) << documents.reason();
    EXPECT_EQ(documents.value(), (std::vector<std::string>{"00000042", "123"}));
}

TEST(CommonProtocol, DecodeDocumentsRejectsNonDigitDocument) {
    const std::string raw = "12345678" "12A4    ";
    auto documents = decode_documents(reinterpret_cast<const std::uint8_t*>(raw.data()), 2);
    ASSERT_FALSE(documents.ok());
    EXPECT_EQ(documents.error(), ErrorCode::malformed_frame);
}

TEST(CommonProtocol, DecodeDocumentsRejectsBlankDocument) {
    const std::string raw = "        ";
    EXPECT_FALSE(decode_documents(reinterpret_cast<const std::uint8_t*>(raw.data()), 1).ok());
}

// ---------------------------------------------------------------- bet records

TEST(CommonProtocol, EncodeBetMatchesHandAssembledRecord) {
    const Bet bet = make_bet(1, "Ana", "Muñoz", "00000042", "2000-02-29", 0x1D96);
    Bytes record(146, 0);
    encode_bet(bet, record.data());
    EXPECT_EQ(record, record_bytes("Ana", "Mu\xC3\xB1oz", "00000042", "20000229", 0x1D96));
    EXPECT_EQ(record[144], 0x1D);
    EXPECT_EQ(record[145], 0x96);
}

TEST(CommonProtocol, HandAssembledRecordDecodes) {
    auto bet = decode_bet(record_bytes("Ana María", "Pérez", "42", "19990317", 7574).data(), 9);
    ASSERT_TRUE(bet.ok()) << bet.reason();
    EXPECT_EQ(bet.value(), make_bet(9, "Ana María", "Pérez", "42", "1999-03-17", 7574));
}

TEST(CommonProtocol, DocumentWithLeadingZerosRoundTripsExactly) {
    const Bet bet = make_bet(3, "Ana", "Gómez", "00000042", "1980-01-01", 1);
    Bytes record(146, 0);
    encode_bet(bet, record.data());
    auto decoded = decode_bet(record.data(), 3);
    ASSERT_TRUE(decoded.ok()) << decoded.reason();
    EXPECT_EQ(decoded.value().document, "00000042");
    EXPECT_EQ(decoded.value(), bet);
}

TEST(CommonProtocol, NameOfInvalidUtf8IsInvalidBet) {
    const std::string bad[] = {
        "\xC0\x80",         // overlong NUL
        "A\xE0\x80\xAF",    // overlong '/'
        "\x80" "abc",       // lone continuation byte
        "ab\xBF",           // lone continuation at the end
        "\xED\xA0\x80",     // UTF-16 surrogate U+D800
        "Mu\xC3",           // truncated 2-byte sequence
        "x\xE2\x82",        // truncated 3-byte sequence
        "\xF4\x90\x80\x80", // above U+10FFFF
        "\xFF",             // never valid
    };
    for (const std::string& name : bad) {
        SCOPED_TRACE(testing::PrintToString(name));
        EXPECT_EQ(record_error(record_bytes(name, "Lorca", "1", "20000101", 1)), ErrorCode::invalid_bet);
        EXPECT_EQ(record_error(record_bytes("Ana", name, "1", "20000101", 1)), ErrorCode::invalid_bet);
    }
}

TEST(CommonProtocol, NameWithFourByteUtf8IsValid) {
    EXPECT_EQ(record_error(record_bytes("\xF0\x9F\x8E\xB2 Ana", "\xE2\x82\xAC", "1", "20000101", 1)),
              std::nullopt);
}

TEST(CommonProtocol, NameWithControlCharacterIsInvalidBet) {
    const std::string bad[] = {std::string("A\x01" "B"), "A\x7F" "B", "A\xC2\x85" "B", "A\tB",
                               std::string("A\0B", 3), "\x1B[31m"};
    for (const std::string& name : bad) {
        SCOPED_TRACE(testing::PrintToString(name));
        EXPECT_EQ(record_error(record_bytes(name, "Lorca", "1", "20000101", 1)), ErrorCode::invalid_bet);
    }
}

TEST(CommonProtocol, NoBreakSpaceIsNotAControlCharacter) {
    // U+00A0 (C2 A0) is just past the C1 range.
    EXPECT_EQ(record_error(record_bytes("Ana\xC2\xA0Mar\xC3\xAD" "a", "Lorca", "1", "20000101", 1)), std::nullopt);
}

TEST(CommonProtocol, AllSpacesNameIsEmptyAndInvalid) {
    EXPECT_EQ(record_error(record_bytes("", "Lorca", "1", "20000101", 1)), ErrorCode::invalid_bet);
    EXPECT_EQ(record_error(record_bytes("Ana", "    ", "1", "20000101", 1)), ErrorCode::invalid_bet);
}

TEST(CommonProtocol, NameOfExactly64MultibyteBytesRoundTrips) {
    const std::string name = repeat("ñ", 32);
    ASSERT_EQ(name.size(), 64u);
    const Bet bet = make_bet(1, name, name, "12345678", "2000-01-01", 9999);
    const Bytes frame = encode_bets_frame(1, 0, {bet});
    auto bets = decode_bets(RequestHeader{RequestType::bets, 1, 0, 1}, frame.data() + 12);
    ASSERT_TRUE(bets.ok()) << bets.reason();
    EXPECT_EQ(bets.value()[0], bet);
    Bet longer = bet;
    longer.first_name += "a"; // 65 bytes: cannot be encoded, so it must not pass validation
    EXPECT_TRUE(bet_problem(longer).has_value());
}

TEST(CommonProtocol, MultibyteCharacterCutAtFieldEndIsInvalid) {
    // "a" + 31 × "ñ" is 63 bytes; the 64th byte starts another "ñ" that never ends.
    const std::string cut = "a" + repeat("ñ", 31) + "\xC3";
    ASSERT_EQ(cut.size(), 64u);
    EXPECT_EQ(record_error(record_bytes(cut, "Lorca", "1", "20000101", 1)), ErrorCode::invalid_bet);
}

TEST(CommonProtocol, DocumentRules) {
    EXPECT_EQ(record_error(record_bytes("Ana", "Lorca", "12A45678", "20000101", 1)), ErrorCode::invalid_bet);
    EXPECT_EQ(record_error(record_bytes("Ana", "Lorca", "", "20000101", 1)), ErrorCode::invalid_bet);
    EXPECT_EQ(record_error(record_bytes("Ana", "Lorca", " 1234", "20000101", 1)), ErrorCode::invalid_bet);
    EXPECT_EQ(record_error(record_bytes("Ana", "Lorca", "12 34", "20000101", 1)), ErrorCode::invalid_bet);
    EXPECT_EQ(record_error(record_bytes("Ana", "Lorca", "-1234", "20000101", 1)), ErrorCode::invalid_bet);
    EXPECT_EQ(record_error(record_bytes("Ana", "Lorca", "0", "20000101", 1)), std::nullopt);
    EXPECT_EQ(record_error(record_bytes("Ana", "Lorca", "99999999", "20000101", 1)), std::nullopt);
}

TEST(CommonProtocol, BirthdateMustBeARealDate) {
    EXPECT_EQ(record_error(record_bytes("Ana", "Lorca", "1", "20010230", 1)), ErrorCode::invalid_bet);
    EXPECT_EQ(record_error(record_bytes("Ana", "Lorca", "1", "20000229", 1)), std::nullopt); // leap (÷400)
    EXPECT_EQ(record_error(record_bytes("Ana", "Lorca", "1", "19000229", 1)), ErrorCode::invalid_bet); // ÷100
    EXPECT_EQ(record_error(record_bytes("Ana", "Lorca", "1", "20230431", 1)), ErrorCode::invalid_bet);
    EXPECT_EQ(record_error(record_bytes("Ana", "Lorca", "1", "20230430", 1)), std::nullopt);
    EXPECT_EQ(record_error(record_bytes("Ana", "Lorca", "1", "20241301", 1)), ErrorCode::invalid_bet);
    EXPECT_EQ(record_error(record_bytes("Ana", "Lorca", "1", "20240100", 1)), ErrorCode::invalid_bet);
    EXPECT_EQ(record_error(record_bytes("Ana", "Lorca", "1", "2000-1-1", 1)), ErrorCode::invalid_bet);
    EXPECT_EQ(record_error(record_bytes("Ana", "Lorca", "1", "        ", 1)), ErrorCode::invalid_bet);
    EXPECT_EQ(record_error(record_bytes("Ana", "Lorca", "1", "2000010", 1)), ErrorCode::invalid_bet);
}

TEST(CommonProtocol, NumberRange) {
    EXPECT_EQ(record_error(record_bytes("Ana", "Lorca", "1", "20000101", 10000)), ErrorCode::invalid_bet);
    EXPECT_EQ(record_error(record_bytes("Ana", "Lorca", "1", "20000101", 0xFFFF)), ErrorCode::invalid_bet);
    EXPECT_EQ(record_error(record_bytes("Ana", "Lorca", "1", "20000101", 9999)), std::nullopt);
    EXPECT_EQ(record_error(record_bytes("Ana", "Lorca", "1", "20000101", 0)), std::nullopt);
}

TEST(CommonProtocol, DecodeBetsIsAllOrNothing) {
    Bytes payload = record_bytes("Ana", "Lorca", "1", "20000101", 1);
    const Bytes bad = record_bytes("Ana", "Lorca", "2", "20010230", 2);
    const Bytes last = record_bytes("Ana", "Lorca", "3", "20000101", 3);
    payload.insert(payload.end(), bad.begin(), bad.end());
    payload.insert(payload.end(), last.begin(), last.end());
    auto bets = decode_bets(RequestHeader{RequestType::bets, 1, 0, 3}, payload.data());
    EXPECT_FALSE(bets.ok());
    EXPECT_EQ(bets.error(), ErrorCode::invalid_bet);
    EXPECT_FALSE(bets.reason().empty());
}

TEST(CommonProtocol, DecodeBetsTakesAgencyFromHeader) {
    Bytes payload = record_bytes("Ana", "Lorca", "1", "20000101", 1);
    auto bets = decode_bets(RequestHeader{RequestType::bets, 321, 0, 1}, payload.data());
    ASSERT_TRUE(bets.ok());
    EXPECT_EQ(bets.value()[0].agency, 321u);
}

TEST(CommonProtocol, RequestTypeNames) {
    EXPECT_STREQ(to_string(RequestType::bets), "BETS");
    EXPECT_STREQ(to_string(RequestType::done), "DONE");
    EXPECT_STREQ(to_string(RequestType::winners), "WINNERS");
    EXPECT_STREQ(to_string(RequestType::echo), "ECHO");
    EXPECT_STREQ(to_string(RequestType::open), "OPEN");
}

// ---------------------------------------------------------------- digest (CONTRACT.md §5)

namespace {

// FNV-1a 64 written out from its definition: for each byte, xor it in, then
// multiply by the prime (mod 2^64), starting from the offset basis.
std::uint64_t reference_fnv1a(const std::uint8_t* data, std::size_t size) {
    std::uint64_t hash = 0xcbf29ce484222325u;
    for (std::size_t i = 0; i < size; ++i) {
        hash ^= data[i];
        hash *= 0x100000001b3u;
    }
    return hash;
}
std::uint64_t reference_fnv1a(const Bytes& bytes) { return reference_fnv1a(bytes.data(), bytes.size()); }
std::uint64_t reference_fnv1a(std::string_view text) {
    return reference_fnv1a(reinterpret_cast<const std::uint8_t*>(text.data()), text.size());
}

// `count` different hand-assembled records, back to back as in a BETS payload.
Bytes records(std::size_t count) {
    Bytes out;
    for (std::size_t i = 0; i < count; ++i) {
        const Bytes record = record_bytes("Ana " + std::to_string(i), "Lorca", std::to_string(1000 + i), "19990317",
                                          static_cast<std::uint16_t>(i * 1111 % 10000));
        out.insert(out.end(), record.begin(), record.end());
    }
    return out;
}

// A source's digest as CONTRACT.md §5 defines it: the sum of its bets' hashes.
Digest digest_of(const std::vector<Bet>& bets) {
    Digest digest = 0;
    for (const Bet& bet : bets) digest += bet_hash(bet);
    return digest;
}

} // namespace

TEST(CommonProtocol, ReferenceFnv1aGivesThePublishedTestVectors) {
    // Checks the test's own reference against the values published with FNV.
    EXPECT_EQ(reference_fnv1a(""), 0xcbf29ce484222325u);
    EXPECT_EQ(reference_fnv1a("a"), 0xaf63dc4c8601ec8cu);
    EXPECT_EQ(reference_fnv1a("foobar"), 0x85944171f73967e8u);
}

TEST(CommonProtocol, RecordHashIsFnv1aOfThe146ByteRecord) {
    const Bytes record = record_bytes("Santiago Lionel", "Lorca", "30904465", "19990317", 7574);
    EXPECT_EQ(record_hash(record.data()), reference_fnv1a(record));
}

TEST(CommonProtocol, RecordHashSeesEveryByteOfTheRecord) {
    const Bytes record = record_bytes("Ana", "Lorca", "42", "20000101", 1);
    for (std::size_t at : {std::size_t{0}, std::size_t{63}, std::size_t{127}, std::size_t{135}, std::size_t{145}}) {
        SCOPED_TRACE(at);
        Bytes changed = record;
        changed[at] ^= 0x01;
        EXPECT_NE(record_hash(changed.data()), record_hash(record.data()));
        EXPECT_EQ(record_hash(changed.data()), reference_fnv1a(changed));
    }
}

TEST(CommonProtocol, BetHashIsTheHashOfTheBetsWireRecord) {
    const Bet bet = make_bet(4, "Ana María", "Muñoz", "00000042", "2000-02-29", 7574);
    EXPECT_EQ(bet_hash(bet), reference_fnv1a(record_bytes("Ana María", "Muñoz", "00000042", "20000229", 7574)));
}

TEST(CommonProtocol, BetHashDoesNotDependOnTheAgency) {
    // The agency is in the frame header, not in the record the hash covers.
    EXPECT_EQ(bet_hash(sample_bet(1)), bet_hash(sample_bet(65535)));
}

TEST(CommonProtocol, RecordHashesEqualsRecordHashOneByOne) {
    // 0..9 records: none, fewer than one group of four, whole groups, and groups with a tail.
    constexpr std::uint64_t kUntouched = 0x5A5A5A5A5A5A5A5Au;
    for (std::size_t count = 0; count <= 9; ++count) {
        SCOPED_TRACE(count);
        const Bytes payload = records(count);
        std::vector<std::uint64_t> hashes(count + 1, kUntouched);
        record_hashes(payload.data(), count, hashes.data());
        for (std::size_t i = 0; i < count; ++i) {
            EXPECT_EQ(hashes[i], record_hash(payload.data() + i * kBetSize)) << "record " << i;
            EXPECT_EQ(hashes[i], reference_fnv1a(payload.data() + i * kBetSize, kBetSize)) << "record " << i;
        }
        EXPECT_EQ(hashes[count], kUntouched) << "wrote past the last record";
    }
}

TEST(CommonProtocol, ServerHashesOfAFrameMatchTheClientsBetHashes) {
    // The handler hashes the frame's records; the client hashes its own bets.
    const std::vector<Bet> bets = test_support::sample_bets(6, 9);
    const Bytes frame = encode_bets_frame(6, 0, bets);
    std::vector<std::uint64_t> hashes(bets.size());
    record_hashes(frame.data() + kRequestHeaderSize, bets.size(), hashes.data());
    for (std::size_t i = 0; i < bets.size(); ++i) EXPECT_EQ(hashes[i], bet_hash(bets[i])) << "bet " << i;
}

TEST(CommonProtocol, DigestIsOrderFree) {
    static_assert(std::is_same_v<Digest, std::uint64_t>, "the sum is taken modulo 2^64");
    const std::vector<Bet> bets = test_support::sample_bets(1, 7);
    std::vector<Bet> reversed(bets.rbegin(), bets.rend());
    std::vector<Bet> rotated(bets.begin() + 3, bets.end());
    rotated.insert(rotated.end(), bets.begin(), bets.begin() + 3);
    EXPECT_EQ(digest_of(reversed), digest_of(bets));
    EXPECT_EQ(digest_of(rotated), digest_of(bets));
}

TEST(CommonProtocol, DigestAddsUpAcrossFrames) {
    // Frames of 2 + 5 bets or 7 at once: the same bets, the same digest.
    const std::vector<Bet> bets = test_support::sample_bets(1, 7);
    const Digest in_two = digest_of({bets.begin(), bets.begin() + 2}) + digest_of({bets.begin() + 2, bets.end()});
    EXPECT_EQ(in_two, digest_of(bets));
}

TEST(CommonProtocol, DigestTellsDifferentBetsApart) {
    const std::vector<Bet> bets = test_support::sample_bets(1, 7);
    std::vector<Bet> changed = bets;
    changed[4].number = static_cast<std::uint16_t>((changed[4].number + 1) % 10000);
    EXPECT_NE(digest_of(changed), digest_of(bets));
    EXPECT_NE(digest_of({bets.begin(), bets.end() - 1}), digest_of(bets));
    EXPECT_EQ(digest_of({}), 0u);
}

// ---------------------------------------------------------------- source names (CONTRACT.md §5)

TEST(CommonProtocol, SourceNamesOfTheClient) {
    EXPECT_TRUE(is_valid_source_name("agency-3.csv"));
    EXPECT_TRUE(is_valid_source_name("env-00000042-7574"));
    EXPECT_TRUE(is_valid_source_name("_"));
    EXPECT_TRUE(is_valid_source_name("a"));
}

TEST(CommonProtocol, SourceNameIsOneTo64Bytes) {
    EXPECT_FALSE(is_valid_source_name(""));
    EXPECT_TRUE(is_valid_source_name(std::string(64, 'x')));
    EXPECT_FALSE(is_valid_source_name(std::string(65, 'x')));
}

TEST(CommonProtocol, SourceNameAlphabetIsLettersDigitsDotUnderscoreDash) {
    const std::string allowed = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-";
    for (int byte = 0; byte < 256; ++byte) {
        const std::string name(1, static_cast<char>(byte));
        const bool expected = allowed.find(static_cast<char>(byte)) != std::string::npos;
        EXPECT_EQ(is_valid_source_name(name), expected) << "byte " << byte;
        EXPECT_EQ(is_valid_source_name("ok" + name + "ok"), expected) << "byte " << byte << " inside a name";
    }
}

TEST(CommonProtocol, SourceNameRejectsPathsSpacesAndUtf8) {
    EXPECT_FALSE(is_valid_source_name("data/agency-3.csv"));
    EXPECT_FALSE(is_valid_source_name("../x"));
    EXPECT_FALSE(is_valid_source_name("agency 3.csv"));
    EXPECT_FALSE(is_valid_source_name("año.csv"));
    EXPECT_FALSE(is_valid_source_name(std::string("a\0b", 3)));
}
