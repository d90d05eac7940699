// Wire codec (SPEC §5). Expected bytes are assembled by hand from the SPEC's
// layout tables, never by calling the encoder under test.
#include "common/protocol.hpp"

#include "../support/test_support.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

using namespace wire;

namespace {

using test_support::make_bet;
using test_support::repeat;

// SPEC §5 request header: type u16 | agency u32 | batch u32 | count u16, big-endian.
Bytes header_bytes(std::uint16_t type, std::uint32_t agency, std::uint32_t batch, std::uint16_t count) {
    return Bytes{
        static_cast<std::uint8_t>(type >> 8),    static_cast<std::uint8_t>(type & 0xFF),
        static_cast<std::uint8_t>(agency >> 24), static_cast<std::uint8_t>((agency >> 16) & 0xFF),
        static_cast<std::uint8_t>((agency >> 8) & 0xFF), static_cast<std::uint8_t>(agency & 0xFF),
        static_cast<std::uint8_t>(batch >> 24),  static_cast<std::uint8_t>((batch >> 16) & 0xFF),
        static_cast<std::uint8_t>((batch >> 8) & 0xFF), static_cast<std::uint8_t>(batch & 0xFF),
        static_cast<std::uint8_t>(count >> 8),   static_cast<std::uint8_t>(count & 0xFF),
    };
}

// SPEC §5 bet record: first 64 | last 64 | document 8 | birthdate 8 | number u16,
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

ErrorCode header_error(const Bytes& bytes) {
    auto result = decode_request_header(bytes.data());
    EXPECT_FALSE(result.ok());
    return result.error();
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

// ---------------------------------------------------------------- headers

TEST(CommonProtocol, HandAssembledBetsHeaderDecodes) {
    // type 1, agency 0x0000ABCD, batch 0x00010203, count 2
    const Bytes bytes{0x00, 0x01, 0x00, 0x00, 0xAB, 0xCD, 0x00, 0x01, 0x02, 0x03, 0x00, 0x02};
    auto result = decode_request_header(bytes.data());
    ASSERT_TRUE(result.ok()) << result.reason();
    EXPECT_EQ(result.value().type, RequestType::bets);
    EXPECT_EQ(result.value().agency, 0xABCDu);
    EXPECT_EQ(result.value().batch, 0x010203u);
    EXPECT_EQ(result.value().count, 2u);
    EXPECT_EQ(payload_size(result.value()), 2u * 146u);
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
    for (std::uint16_t type : {std::uint16_t{0}, std::uint16_t{5}, std::uint16_t{0xFFFF}}) {
        SCOPED_TRACE(type);
        EXPECT_EQ(header_error(header_bytes(type, 1, 0, 0)), ErrorCode::malformed_frame);
    }
}

TEST(CommonProtocol, BetsWithZeroCountIsMalformed) {
    EXPECT_EQ(header_error(header_bytes(1, 1, 1, 0)), ErrorCode::malformed_frame);
}

TEST(CommonProtocol, BetsWith57BetsIsOver8KiB) {
    EXPECT_EQ(header_error(header_bytes(1, 1, 1, 57)), ErrorCode::malformed_frame);
    EXPECT_EQ(header_error(header_bytes(1, 1, 1, 0xFFFF)), ErrorCode::malformed_frame);
}

TEST(CommonProtocol, BetsWith56BetsIsAccepted) {
    auto result = decode_request_header(header_bytes(1, 1, 1, 56).data());
    ASSERT_TRUE(result.ok()) << result.reason();
    EXPECT_EQ(payload_size(result.value()), 56u * 146u);
}

TEST(CommonProtocol, BetsWithBatchZeroIsMalformed) {
    EXPECT_EQ(header_error(header_bytes(1, 1, 0, 1)), ErrorCode::malformed_frame);
}

TEST(CommonProtocol, EchoPayloadLimitIs8180) {
    auto largest = decode_request_header(header_bytes(4, 0, 0, 8180).data());
    ASSERT_TRUE(largest.ok()) << largest.reason();
    EXPECT_EQ(payload_size(largest.value()), 8180u);
    EXPECT_EQ(header_error(header_bytes(4, 0, 0, 8181)), ErrorCode::malformed_frame);
    EXPECT_EQ(header_error(header_bytes(4, 0, 0, 0xFFFF)), ErrorCode::malformed_frame);
}

TEST(CommonProtocol, EchoWithEmptyPayloadIsAccepted) {
    auto result = decode_request_header(header_bytes(4, 0, 0, 0).data());
    ASSERT_TRUE(result.ok());
    EXPECT_EQ(payload_size(result.value()), 0u);
}

TEST(CommonProtocol, DoneAndWinnersWithNonzeroCountOrBatchAreMalformed) {
    for (std::uint16_t type : {std::uint16_t{2}, std::uint16_t{3}}) {
        SCOPED_TRACE(type);
        EXPECT_EQ(header_error(header_bytes(type, 1, 0, 1)), ErrorCode::malformed_frame);
        EXPECT_EQ(header_error(header_bytes(type, 1, 1, 0)), ErrorCode::malformed_frame);
        EXPECT_EQ(header_error(header_bytes(type, 1, 0x80000000u, 0)), ErrorCode::malformed_frame);
        auto good = decode_request_header(header_bytes(type, 1, 0, 0).data());
        ASSERT_TRUE(good.ok());
        EXPECT_EQ(payload_size(good.value()), 0u);
    }
}

TEST(CommonProtocol, UnknownReplyTypesAreRejected) {
    for (std::uint16_t type : {std::uint16_t{0}, std::uint16_t{5}, std::uint16_t{0xFFFF}}) {
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

    auto header = decode_request_header(frame.data());
    ASSERT_TRUE(header.ok()) << header.reason();
    EXPECT_EQ(header.value(), (RequestHeader{RequestType::bets, 7, 3, 1}));
    auto bets = decode_bets(header.value(), frame.data() + 12);
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
    auto header = decode_request_header(frame.data());
    ASSERT_TRUE(header.ok()) << header.reason();
    EXPECT_EQ(header.value().count, 56u);
    EXPECT_EQ(header.value().batch, 99u);
    auto bets = decode_bets(header.value(), frame.data() + 12);
    ASSERT_TRUE(bets.ok()) << bets.reason();
    EXPECT_EQ(bets.value(), sent);
}

TEST(CommonProtocol, DoneRequestMatchesHandBytesAndRoundTrips) {
    const Bytes frame = encode_request(RequestType::done, 5);
    EXPECT_EQ(frame, header_bytes(2, 5, 0, 0));
    auto header = decode_request_header(frame.data());
    ASSERT_TRUE(header.ok());
    EXPECT_EQ(header.value(), (RequestHeader{RequestType::done, 5, 0, 0}));
}

TEST(CommonProtocol, WinnersRequestMatchesHandBytesAndRoundTrips) {
    const Bytes frame = encode_request(RequestType::winners, 65535);
    EXPECT_EQ(frame, header_bytes(3, 65535, 0, 0));
    auto header = decode_request_header(frame.data());
    ASSERT_TRUE(header.ok());
    EXPECT_EQ(header.value(), (RequestHeader{RequestType::winners, 65535, 0, 0}));
}

TEST(CommonProtocol, EchoFrameCarriesPayloadVerbatim) {
    const std::string payload("hola\0mundo|\xC3\xB1\n", 15);
    const Bytes frame = encode_echo_frame(payload);
    ASSERT_EQ(frame.size(), 12u + payload.size());
    EXPECT_EQ(Bytes(frame.begin(), frame.begin() + 12), header_bytes(4, 0, 0, 15));
    EXPECT_EQ(std::string(frame.begin() + 12, frame.end()), payload);
    auto header = decode_request_header(frame.data());
    ASSERT_TRUE(header.ok());
    EXPECT_EQ(header.value(), (RequestHeader{RequestType::echo, 0, 0, 15}));
    EXPECT_EQ(payload_size(header.value()), payload.size());
}

// ---------------------------------------------------------------- replies

TEST(CommonProtocol, AckReplyRoundTrips) {
    const Bytes reply = encode_reply(ReplyType::ack, 56);
    EXPECT_EQ(reply, (Bytes{0x00, 0x01, 0x00, 0x00, 0x00, 0x38}));
    auto header = decode_reply_header(reply.data());
    ASSERT_TRUE(header.ok());
    EXPECT_EQ(header.value(), (ReplyHeader{ReplyType::ack, 56}));
}

TEST(CommonProtocol, ErrorReplyRoundTripsForEveryCode) {
    const std::pair<ErrorCode, std::uint8_t> codes[] = {
        {ErrorCode::malformed_frame, 1}, {ErrorCode::invalid_bet, 2},  {ErrorCode::bad_agency, 3},
        {ErrorCode::batch_out_of_sequence, 4}, {ErrorCode::agency_done, 5}, {ErrorCode::shutting_down, 6}};
    for (const auto& [code, number] : codes) {
        SCOPED_TRACE(number);
        const Bytes reply = encode_error(code);
        EXPECT_EQ(reply, (Bytes{0x00, 0x02, 0x00, 0x00, 0x00, number}));
        auto header = decode_reply_header(reply.data());
        ASSERT_TRUE(header.ok());
        EXPECT_EQ(header.value().type, ReplyType::error);
        EXPECT_EQ(static_cast<ErrorCode>(header.value().value), code);
        EXPECT_STRNE(to_string(code), "unknown error");
    }
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
    Bytes expected{0x00, 0x03, 0x00, 0x00, 0x00, 0x02};
    for (char c : std::string("00000042123     ")) expected.push_back(static_cast<std::uint8_t>(c));
    EXPECT_EQ(reply, expected);
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
    const Bytes frame = encode_bets_frame(1, 1, {bet});
    auto bets = decode_bets(RequestHeader{RequestType::bets, 1, 1, 1}, frame.data() + 12);
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
    auto bets = decode_bets(RequestHeader{RequestType::bets, 1, 1, 3}, payload.data());
    EXPECT_FALSE(bets.ok());
    EXPECT_EQ(bets.error(), ErrorCode::invalid_bet);
    EXPECT_FALSE(bets.reason().empty());
}

TEST(CommonProtocol, DecodeBetsTakesAgencyFromHeader) {
    Bytes payload = record_bytes("Ana", "Lorca", "1", "20000101", 1);
    auto bets = decode_bets(RequestHeader{RequestType::bets, 321, 1, 1}, payload.data());
    ASSERT_TRUE(bets.ok());
    EXPECT_EQ(bets.value()[0].agency, 321u);
}

TEST(CommonProtocol, RequestTypeNames) {
    EXPECT_STREQ(to_string(RequestType::bets), "BETS");
    EXPECT_STREQ(to_string(RequestType::done), "DONE");
    EXPECT_STREQ(to_string(RequestType::winners), "WINNERS");
    EXPECT_STREQ(to_string(RequestType::echo), "ECHO");
}
