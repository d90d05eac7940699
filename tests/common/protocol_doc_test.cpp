// docs/PROTOCOL.md cannot drift from the codec: every hex dump in it is parsed
// (an HTML comment `<!-- hex:NAME -->`, then a fenced block in `xxd -g1`
// format) and decoded with the real decoder, the decoded values must be the
// ones the doc states, and re-encoding must give the dump's bytes back. The
// reason texts the doc lists for errors 1 and 2 are checked against the code
// too. Run from the repository root (as `make test` does).
#include "common/protocol.hpp"

#include "../support/test_support.hpp"

#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdint>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

using namespace wire;

namespace {

using test_support::make_bet;
using test_support::slurp;

constexpr const char* kDocPath = "docs/PROTOCOL.md";

// The repository root as a prefix ("", "../", "../../"): the tests are meant
// to run from the root, but running them from bin/ should not be a mystery.
std::optional<std::string> repo_root() {
    for (const std::string prefix : {"", "../", "../../"})
        if (std::ifstream(prefix + kDocPath)) return prefix;
    return std::nullopt;
}

std::string working_directory() {
    char buffer[4096];
    return ::getcwd(buffer, sizeof buffer) ? buffer : "(unknown)";
}

struct Doc {
    bool found = false;
    std::string root;
    std::string text;
    std::vector<std::string> lines;
};

const Doc& doc() {
    static const Doc loaded = [] {
        Doc d;
        const auto root = repo_root();
        if (!root) return d;
        d.found = true;
        d.root = *root;
        d.text = slurp(d.root + kDocPath);
        std::istringstream in(d.text);
        for (std::string line; std::getline(in, line);) {
            if (!line.empty() && line.back() == '\r') line.pop_back();
            d.lines.push_back(line);
        }
        return d;
    }();
    return loaded;
}

::testing::AssertionResult doc_found() {
    if (doc().found) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure()
           << "cannot read " << kDocPath << " (working directory: " << working_directory()
           << "); run bin/unit_tests from the repository root";
}

std::string marker(const std::string& name) { return "<!-- hex:" + name + " -->"; }

// NAME when `line` is a marker `<!-- hex:NAME -->` on its own (surrounding
// spaces allowed), or nothing. A marker quoted inside a sentence does not count.
std::optional<std::string> marker_name(const std::string& line) {
    const std::size_t first = line.find_first_not_of(' ');
    if (first == std::string::npos) return std::nullopt;
    const std::string trimmed = line.substr(first, line.find_last_not_of(' ') - first + 1);
    const std::string open = "<!-- hex:", close = " -->";
    if (trimmed.size() <= open.size() + close.size() || trimmed.rfind(open, 0) != 0 ||
        trimmed.compare(trimmed.size() - close.size(), close.size(), close) != 0)
        return std::nullopt;
    return trimmed.substr(open.size(), trimmed.size() - open.size() - close.size());
}

int hex_digit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

std::string right_trimmed(std::string text) {
    while (!text.empty() && text.back() == ' ') text.pop_back();
    return text;
}

// One `xxd -g1` line: "OOOOOOOO: hh hh ... hh" (hex area of 47 columns),
// two spaces, then the text column (bytes 0x20..0x7e as themselves, others
// as '.'). The offset must continue the bytes read so far and the text column
// must match the bytes (trailing spaces may have been trimmed by an editor).
std::optional<std::string> parse_xxd_line(const std::string& line, Bytes& bytes) {
    constexpr std::size_t kHexStart = 10, kHexWidth = 47, kTextStart = kHexStart + kHexWidth + 2;
    if (line.size() < kHexStart + 2 || line[8] != ':' || line[9] != ' ')
        return "not an xxd line (expected 'OOOOOOOO: hh hh ...')";
    std::uint32_t offset = 0;
    for (std::size_t i = 0; i < 8; ++i) {
        const int digit = hex_digit(line[i]);
        if (digit < 0) return "bad offset column";
        offset = offset << 4 | static_cast<std::uint32_t>(digit);
    }
    if (offset != bytes.size())
        return "offset " + line.substr(0, 8) + " but " + std::to_string(bytes.size()) + " bytes came before it";
    const std::string area = line.substr(kHexStart, kHexWidth);
    std::size_t count = 0;
    for (; count < 16; ++count) {
        const std::size_t at = 3 * count;
        if (at + 1 >= area.size() || area[at] == ' ') break;
        const int high = hex_digit(area[at]), low = hex_digit(area[at + 1]);
        if (high < 0 || low < 0) return "'" + area.substr(at, 2) + "' is not a hex byte";
        if (at + 2 < area.size() && area[at + 2] != ' ') return "bytes must be separated by one space";
        bytes.push_back(static_cast<std::uint8_t>(high << 4 | low));
    }
    if (count == 0) return "a line without bytes";
    if (area.find_first_not_of(' ', std::min(area.size(), 3 * count)) != std::string::npos)
        return "unexpected text in the hex area after byte " + std::to_string(count);
    if (line.size() > kHexStart + kHexWidth && right_trimmed(line.substr(kHexStart + kHexWidth, 2)) != "")
        return "the hex area and the text column must be separated by two spaces";
    std::string expected;
    for (std::size_t i = bytes.size() - count; i < bytes.size(); ++i)
        expected += bytes[i] >= 0x20 && bytes[i] <= 0x7e ? static_cast<char>(bytes[i]) : '.';
    const std::string shown = line.size() > kTextStart ? line.substr(kTextStart) : "";
    if (right_trimmed(shown) != right_trimmed(expected))
        return "text column '" + shown + "' does not match the bytes ('" + expected + "')";
    return std::nullopt;
}

// The bytes of the dump marked `name`, or why they cannot be had.
::testing::AssertionResult load_dump(const std::string& name, Bytes& bytes) {
    if (auto found = doc_found(); !found) return found;
    const auto& lines = doc().lines;
    std::size_t at = 0, seen = 0;
    for (std::size_t i = 0; i < lines.size(); ++i)
        if (marker_name(lines[i]) == name) at = i, ++seen;
    auto fail = [&](std::size_t line) {
        return ::testing::AssertionFailure() << kDocPath << ":" << line + 1 << ": dump '" << name << "': ";
    };
    if (seen == 0) return ::testing::AssertionFailure() << kDocPath << ": no marker " << marker(name);
    if (seen > 1) return ::testing::AssertionFailure() << kDocPath << ": marker " << marker(name) << " appears " << seen << " times";
    if (at + 1 >= lines.size() || lines[at + 1].rfind("```", 0) != 0)
        return fail(at + 1) << "the marker must be followed by a fenced block";
    bytes.clear();
    std::size_t i = at + 2;
    for (; i < lines.size() && lines[i].rfind("```", 0) != 0; ++i) {
        if (bytes.size() % 16 != 0) return fail(i) << "only the last line may hold fewer than 16 bytes";
        if (auto problem = parse_xxd_line(lines[i], bytes)) return fail(i) << *problem;
    }
    if (i == lines.size()) return fail(at + 1) << "the fenced block is not closed";
    if (bytes.empty()) return fail(at + 1) << "the block holds no bytes";
    return ::testing::AssertionSuccess();
}

// The prose that explains dump `name`: from its marker to the next marker or heading.
std::string section_of(const std::string& name) {
    const std::string& text = doc().text;
    const std::size_t start = text.find("\n" + marker(name) + "\n");
    if (start == std::string::npos) return {};
    std::size_t end = text.size();
    for (const char* next : {"\n<!-- hex:", "\n## ", "\n### "}) {
        const std::size_t found = text.find(next, start + 1);
        if (found != std::string::npos && found < end) end = found;
    }
    // Include the paragraph just before the marker, which introduces the dump.
    const std::size_t before = start >= 2 ? text.rfind("\n\n", start - 2) : std::string::npos;
    const std::size_t from = before == std::string::npos ? 0 : before;
    return text.substr(from, end - from);
}

::testing::AssertionResult doc_mentions(const std::string& text) {
    if (doc().text.find(text) != std::string::npos) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure() << kDocPath << " does not mention '" << text << "'";
}

::testing::AssertionResult section_mentions(const std::string& name, const std::string& text) {
    if (section_of(name).find(text) != std::string::npos) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure() << kDocPath << ": the text around dump '" << name
                                         << "' does not mention '" << text << "'";
}

// §7.1: the first row of .data/agency-1.csv, agency 1.
Bet doc_bet() { return make_bet(1, "Renée", "Domínguez", "44889019", "1961-09-29", 2319); }

} // namespace

TEST(ProtocolDoc, EveryMarkedDumpParses) {
    ASSERT_TRUE(doc_found());
    std::size_t dumps = 0;
    for (const std::string& line : doc().lines) {
        const auto name = marker_name(line);
        if (!name) continue;
        Bytes bytes;
        EXPECT_TRUE(load_dump(*name, bytes)) << "dump " << *name;
        ++dumps;
    }
    EXPECT_GE(dumps, 8u) << "expected the dumps of §2 and §7";
}

TEST(ProtocolDoc, BetsFrameDecodesToTheStatedBet) {
    Bytes frame;
    ASSERT_TRUE(load_dump("bets-frame", frame));
    ASSERT_EQ(frame.size(), kRequestHeaderSize + kBetSize); // 158, as the doc says
    EXPECT_TRUE(section_mentions("bets-frame", "158 bytes"));

    const auto header = decode_request_header(frame.data());
    ASSERT_TRUE(header.ok()) << header.reason();
    EXPECT_EQ(header.value(), (RequestHeader{RequestType::bets, 1, 1, 1}));
    ASSERT_EQ(payload_size(header.value()), frame.size() - kRequestHeaderSize);

    const auto bets = decode_bets(header.value(), frame.data() + kRequestHeaderSize);
    ASSERT_TRUE(bets.ok()) << bets.reason();
    ASSERT_EQ(bets.value().size(), 1u);
    const Bet& bet = bets.value()[0];
    EXPECT_EQ(bet.agency, 1u);
    EXPECT_EQ(bet.first_name, "Renée");
    EXPECT_EQ(bet.last_name, "Domínguez");
    EXPECT_EQ(bet.document, "44889019");
    EXPECT_EQ(bet.birthdate, "1961-09-29");
    EXPECT_EQ(bet.number, 2319);
    EXPECT_EQ(bet, doc_bet());

    EXPECT_EQ(encode_bets_frame(1, 1, {doc_bet()}), frame);

    // The values as the doc's text states them.
    for (const char* stated : {"Renée", "Domínguez", "44889019", "1961-09-29", "19610929", "2319", "09 0f",
                               "Renée,Domínguez,44889019,1961-09-29,2319"})
        EXPECT_TRUE(doc_mentions(stated));
}

TEST(ProtocolDoc, BetsFrameIsARealRowOfAgencyOne) {
    ASSERT_TRUE(doc_found());
    std::ifstream csv(doc().root + ".data/agency-1.csv", std::ios::binary);
    if (!csv) GTEST_SKIP() << ".data/agency-1.csv not found";
    std::string first;
    std::getline(csv, first);
    if (!first.empty() && first.back() == '\r') first.pop_back();
    EXPECT_EQ(first, "Renée,Domínguez,44889019,1961-09-29,2319")
        << "§7.1 of " << kDocPath << " quotes the first row of .data/agency-1.csv";
}

TEST(ProtocolDoc, AckIsAckOfOneBet) {
    Bytes reply;
    ASSERT_TRUE(load_dump("ack", reply));
    ASSERT_EQ(reply.size(), kReplyHeaderSize);
    const auto header = decode_reply_header(reply.data());
    ASSERT_TRUE(header.ok()) << header.reason();
    EXPECT_EQ(header.value(), (ReplyHeader{ReplyType::ack, 1}));
    EXPECT_EQ(encode_reply(ReplyType::ack, 1), reply);
}

TEST(ProtocolDoc, DoneIsAnsweredWithAckZero) {
    Bytes reply;
    ASSERT_TRUE(load_dump("ack-done", reply));
    ASSERT_EQ(reply.size(), kReplyHeaderSize);
    const auto header = decode_reply_header(reply.data());
    ASSERT_TRUE(header.ok()) << header.reason();
    EXPECT_EQ(header.value(), (ReplyHeader{ReplyType::ack, 0}));
    EXPECT_EQ(encode_reply(ReplyType::ack, 0), reply);
}

TEST(ProtocolDoc, DoneAndWinnersRequestsAreBareHeaders) {
    for (const auto& [name, type] : {std::pair{"done-frame", RequestType::done},
                                     std::pair{"winners-frame", RequestType::winners}}) {
        SCOPED_TRACE(name);
        Bytes frame;
        ASSERT_TRUE(load_dump(name, frame));
        ASSERT_EQ(frame.size(), kRequestHeaderSize);
        const auto header = decode_request_header(frame.data());
        ASSERT_TRUE(header.ok()) << header.reason();
        EXPECT_EQ(header.value(), (RequestHeader{type, 1, 0, 0}));
        EXPECT_EQ(payload_size(header.value()), 0u);
        EXPECT_EQ(encode_request(type, 1), frame);
    }
}

TEST(ProtocolDoc, WinnersReplyCarriesTheTwoStatedDocuments) {
    Bytes reply;
    ASSERT_TRUE(load_dump("winners-reply", reply));
    ASSERT_GE(reply.size(), kReplyHeaderSize);
    const auto header = decode_reply_header(reply.data());
    ASSERT_TRUE(header.ok()) << header.reason();
    EXPECT_EQ(header.value(), (ReplyHeader{ReplyType::winners, 2}));
    ASSERT_EQ(reply.size(), kReplyHeaderSize + 2 * kDocumentSize); // 22
    EXPECT_TRUE(section_mentions("winners-reply", "22 bytes"));

    const auto documents = decode_documents(reply.data() + kReplyHeaderSize, 2);
    ASSERT_TRUE(documents.ok()) << documents.reason();
    EXPECT_EQ(documents.value(), (std::vector<std::string>{"00000042", "7654321"}));
    EXPECT_EQ(encode_winners_reply({"00000042", "7654321"}), reply);
    EXPECT_TRUE(section_mentions("winners-reply", "00000042"));
    EXPECT_TRUE(section_mentions("winners-reply", "7654321"));
}

TEST(ProtocolDoc, EchoFrameIsTheScriptsProbeAndComesBackUnchanged) {
    const std::string payload = "hola servidor, esto es un eco";
    Bytes frame, reply;
    ASSERT_TRUE(load_dump("echo-frame", frame));
    ASSERT_TRUE(load_dump("echo-reply", reply));

    const auto header = decode_request_header(frame.data());
    ASSERT_TRUE(header.ok()) << header.reason();
    EXPECT_EQ(header.value(), (RequestHeader{RequestType::echo, 0, 0, static_cast<std::uint16_t>(payload.size())}));
    ASSERT_EQ(frame.size(), kRequestHeaderSize + payload_size(header.value())); // 41
    EXPECT_EQ(std::string(frame.begin() + kRequestHeaderSize, frame.end()), payload);
    EXPECT_EQ(encode_echo_frame(payload), frame);
    EXPECT_TRUE(section_mentions("echo-frame", payload));
    EXPECT_TRUE(section_mentions("echo-frame", "41 bytes"));

    // What Handler::on_echo sends back: the decoded header re-encoded, then the payload.
    const auto head = encode_request_header(header.value());
    Bytes echoed(head.begin(), head.end());
    echoed.insert(echoed.end(), frame.begin() + kRequestHeaderSize, frame.end());
    EXPECT_EQ(echoed, frame);
    EXPECT_EQ(reply, frame) << "the ECHO reply is the request, byte for byte";
}

TEST(ProtocolDoc, EchoPayloadIsTheDefaultOfValidarEchoServer) {
    ASSERT_TRUE(doc_found());
    const std::string script = slurp(doc().root + "scripts/validar-echo-server.sh");
    if (script.empty()) GTEST_SKIP() << "scripts/validar-echo-server.sh not found";
    const std::string key = "payload=${ECHO_PAYLOAD:-";
    const std::size_t at = script.find(key);
    ASSERT_NE(at, std::string::npos) << "the script no longer sets its default payload as " << key << "...}";
    const std::size_t end = script.find('}', at);
    ASSERT_NE(end, std::string::npos);
    EXPECT_EQ(script.substr(at + key.size(), end - at - key.size()), "hola servidor, esto es un eco")
        << "§7.4 of " << kDocPath << " shows the script's default ECHO payload";
}

TEST(ProtocolDoc, ErrorReplyCarriesCodeFour) {
    Bytes reply;
    ASSERT_TRUE(load_dump("error-reply", reply));
    ASSERT_EQ(reply.size(), kReplyHeaderSize);
    const auto header = decode_reply_header(reply.data());
    ASSERT_TRUE(header.ok()) << header.reason();
    EXPECT_EQ(header.value(), (ReplyHeader{ReplyType::error, 4}));
    EXPECT_EQ(static_cast<ErrorCode>(header.value().value), ErrorCode::batch_out_of_sequence);
    EXPECT_EQ(encode_error(ErrorCode::batch_out_of_sequence), reply);
    EXPECT_TRUE(section_mentions("error-reply", to_string(ErrorCode::batch_out_of_sequence)));
}

// §4: the numbers, names and reason texts the doc lists are the code's.
TEST(ProtocolDoc, SizesAndErrorNamesAreTheCodes) {
    ASSERT_TRUE(doc_found());
    EXPECT_EQ(kRequestHeaderSize, 12u);
    EXPECT_EQ(kReplyHeaderSize, 6u);
    EXPECT_EQ(kBetSize, 146u);
    EXPECT_EQ(kMaxBetsPerFrame, 56u);
    EXPECT_EQ(kMaxEchoPayload, 8180u);
    EXPECT_EQ(kMaxFrame, 8192u);
    EXPECT_TRUE(doc_mentions("12 + 56 × 146 = 8188"));
    for (std::uint32_t code = 1; code <= 6; ++code) {
        const std::string name = to_string(static_cast<ErrorCode>(code));
        EXPECT_TRUE(doc_mentions("| " + std::to_string(code) + " | `")) << "code " << code;
        EXPECT_TRUE(doc_mentions(name)) << "code " << code;
    }
}

TEST(ProtocolDoc, MalformedFrameReasonsAreTheCodes) {
    ASSERT_TRUE(doc_found());
    auto reason_for = [](std::uint16_t type, std::uint32_t batch, std::uint16_t count) {
        std::uint8_t bytes[kRequestHeaderSize];
        put_u16(&bytes[0], type);
        put_u32(&bytes[2], 1);
        put_u32(&bytes[6], batch);
        put_u16(&bytes[10], count);
        const auto header = decode_request_header(bytes);
        EXPECT_FALSE(header.ok());
        EXPECT_EQ(header.error(), ErrorCode::malformed_frame);
        return std::string(header.reason());
    };
    for (const std::string& reason : {reason_for(9, 0, 0), reason_for(1, 1, 0), reason_for(1, 1, 57),
                                      reason_for(1, 0, 1), reason_for(2, 0, 1), reason_for(3, 1, 0),
                                      reason_for(4, 0, 8181)})
        EXPECT_TRUE(doc_mentions("`" + reason + "`"));
}

TEST(ProtocolDoc, InvalidBetReasonsAreTheCodes) {
    ASSERT_TRUE(doc_found());
    std::vector<Bet> bad(7, doc_bet());
    bad[0].first_name = "";
    bad[1].last_name = std::string(65, 'x');
    bad[2].first_name = "Ren\xC3";
    bad[3].last_name = std::string("Dom\0", 4);
    bad[4].document = "4488901A";
    bad[5].birthdate = "2001-02-29";
    bad[6].number = 10000;
    for (const Bet& bet : bad) {
        const auto problem = bet_problem(bet);
        ASSERT_TRUE(problem.has_value());
        EXPECT_TRUE(doc_mentions("`" + std::string(*problem) + "`"));
    }
}
