// docs/PROTOCOL.md cannot drift from the code: every hex dump in it is parsed
// (an HTML comment `<!-- hex:NAME -->`, then a fenced block in `xxd -g1`
// format) and decoded with the real decoder, the decoded values must be the
// ones the doc states, and re-encoding must give the dump's bytes back. The
// digest in the RESUME example is recomputed from the CSV rows the doc quotes,
// by the codec and by the definition the doc gives; the OPEN / RESUME /
// straddling BETS / ERROR 8 story is replayed against the real coordinator.
// The reason texts the doc lists for errors 1 and 2 are checked against the
// code too. Run from the repository root (as `make test` does).
#include "client/bet_source.hpp"
#include "common/bet_store.hpp"
#include "common/csv.hpp"
#include "common/protocol.hpp"
#include "server/coordinator.hpp"

#include "../server/coordinator_support.hpp"
#include "../support/test_support.hpp"

#include "../support/skip.hpp"

#include <gtest/gtest.h>

#include <unistd.h>

#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <numeric>
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

// A marker is `<!-- KIND:NAME -->` on a line of its own: `hex` before a dump,
// `csv` before a block of CSV rows.
std::string marker(const std::string& kind, const std::string& name) { return "<!-- " + kind + ":" + name + " -->"; }

// NAME when `line` is a marker of `kind` on its own (surrounding spaces
// allowed), or nothing. A marker quoted inside a sentence does not count.
std::optional<std::string> marker_name(const std::string& line, const std::string& kind = "hex") {
    const std::size_t first = line.find_first_not_of(' ');
    if (first == std::string::npos) return std::nullopt;
    const std::string trimmed = line.substr(first, line.find_last_not_of(' ') - first + 1);
    const std::string open = "<!-- " + kind + ":", close = " -->";
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

// The lines of the fenced block right after the one marker `kind:name`, or
// why there is no such block. `at` is set to the marker's line index.
::testing::AssertionResult load_block(const std::string& kind, const std::string& name,
                                      std::vector<std::string>& block, std::size_t& at) {
    if (auto found = doc_found(); !found) return found;
    const auto& lines = doc().lines;
    std::size_t seen = 0;
    for (std::size_t i = 0; i < lines.size(); ++i)
        if (marker_name(lines[i], kind) == name) at = i, ++seen;
    const std::string wanted = marker(kind, name);
    if (seen == 0) return ::testing::AssertionFailure() << kDocPath << ": no marker " << wanted;
    if (seen > 1) return ::testing::AssertionFailure() << kDocPath << ": marker " << wanted << " appears " << seen << " times";
    if (at + 1 >= lines.size() || lines[at + 1].rfind("```", 0) != 0)
        return ::testing::AssertionFailure() << kDocPath << ":" << at + 2 << ": " << wanted
                                             << " must be followed by a fenced block";
    block.clear();
    std::size_t i = at + 2;
    for (; i < lines.size() && lines[i].rfind("```", 0) != 0; ++i) block.push_back(lines[i]);
    if (i == lines.size())
        return ::testing::AssertionFailure() << kDocPath << ":" << at + 2 << ": the block after " << wanted
                                             << " is not closed";
    if (block.empty()) return ::testing::AssertionFailure() << kDocPath << ": the block after " << wanted << " is empty";
    return ::testing::AssertionSuccess();
}

// The bytes of the dump marked `name`, or why they cannot be had.
::testing::AssertionResult load_dump(const std::string& name, Bytes& bytes) {
    std::vector<std::string> block;
    std::size_t at = 0;
    if (auto loaded = load_block("hex", name, block, at); !loaded) return loaded;
    bytes.clear();
    for (std::size_t i = 0; i < block.size(); ++i) {
        auto fail = [&] {
            return ::testing::AssertionFailure() << kDocPath << ":" << at + 3 + i << ": dump '" << name << "': ";
        };
        if (bytes.size() % 16 != 0) return fail() << "only the last line may hold fewer than 16 bytes";
        if (auto problem = parse_xxd_line(block[i], bytes)) return fail() << *problem;
    }
    return ::testing::AssertionSuccess();
}

// The dump `name` as a request: its bytes and decoded header. Fails unless the
// header decodes and the dump is exactly the header and the payload it announces.
::testing::AssertionResult load_request(const std::string& name, Bytes& frame, RequestHeader& header) {
    if (auto loaded = load_dump(name, frame); !loaded) return loaded;
    auto fail = [&] { return ::testing::AssertionFailure() << kDocPath << ": dump '" << name << "': "; };
    if (frame.size() < kRequestHeaderSize) return fail() << "shorter than a request header";
    const auto decoded = decode_request_header(frame.data());
    if (!decoded.ok()) return fail() << decoded.reason();
    header = decoded.value();
    if (frame.size() != kRequestHeaderSize + payload_size(header))
        return fail() << frame.size() << " bytes, but its header announces " << payload_size(header) << " of payload";
    return ::testing::AssertionSuccess();
}

// The dump `name` as a reply: its bytes and decoded header, which `extra`
// bytes follow (the digest of RESUME, the documents of WINNERS).
::testing::AssertionResult load_reply(const std::string& name, Bytes& reply, ReplyHeader& header,
                                      std::size_t extra = 0) {
    if (auto loaded = load_dump(name, reply); !loaded) return loaded;
    auto fail = [&] { return ::testing::AssertionFailure() << kDocPath << ": dump '" << name << "': "; };
    if (reply.size() != kReplyHeaderSize + extra)
        return fail() << reply.size() << " bytes, expected " << kReplyHeaderSize + extra;
    const auto decoded = decode_reply_header(reply.data());
    if (!decoded.ok()) return fail() << decoded.reason();
    header = decoded.value();
    return ::testing::AssertionSuccess();
}

// The CSV rows marked `csv:name`, read as bin/client reads its file (agency 1).
::testing::AssertionResult load_rows(const std::string& name, std::vector<Bet>& bets,
                                     std::vector<std::string>* rows = nullptr) {
    std::vector<std::string> block;
    std::size_t at = 0;
    if (auto loaded = load_block("csv", name, block, at); !loaded) return loaded;
    bets.clear();
    std::vector<std::string> fields;
    for (const std::string& row : block) {
        Bet bet;
        if (!split_csv_line(row, fields)) return ::testing::AssertionFailure() << "broken CSV row: " << row;
        if (auto problem = bet_from_row(fields, 1, bet))
            return ::testing::AssertionFailure() << "row '" << row << "' is not a valid bet: " << *problem;
        bets.push_back(bet);
    }
    if (rows) *rows = block;
    return ::testing::AssertionSuccess();
}

// The prose that explains dump `name`: from the paragraph before its marker
// to the next marker or heading.
std::string section_of(const std::string& name) {
    const std::string& text = doc().text;
    const std::size_t start = text.find("\n" + marker("hex", name) + "\n");
    if (start == std::string::npos) return {};
    std::size_t end = text.size();
    for (const char* next : {"\n<!-- hex:", "\n## ", "\n### "}) {
        const std::size_t found = text.find(next, start + 1);
        if (found != std::string::npos && found < end) end = found;
    }
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

std::string hex64(std::uint64_t value) {
    char text[19];
    std::snprintf(text, sizeof text, "0x%016" PRIx64, value);
    return text;
}

// FNV-1a 64 exactly as the doc defines it, independent of the codec.
std::uint64_t fnv1a_64(const std::uint8_t* bytes, std::size_t size) {
    std::uint64_t hash = 0xcbf29ce484222325;
    for (std::size_t i = 0; i < size; ++i) hash = (hash ^ bytes[i]) * 0x100000001b3;
    return hash;
}

// The doc's digest of `bets`: the sum mod 2^64 of each record's FNV-1a 64.
std::uint64_t digest_by_definition(const std::vector<Bet>& bets) {
    std::uint64_t sum = 0;
    for (const Bet& bet : bets) {
        std::uint8_t record[kBetSize];
        encode_bet(bet, record);
        sum += fnv1a_64(record, sizeof record);
    }
    return sum;
}

std::vector<Bet> slice(const std::vector<Bet>& bets, std::size_t from, std::size_t to) {
    return std::vector<Bet>(bets.begin() + from, bets.begin() + to);
}

// What a handler sends the coordinator for a BETS frame (one that decodes):
// its header, the connection's source, one hash per record and one store
// line per bet.
ipc::Request bets_request(const Bytes& frame, ipc::SourceId source) {
    ipc::Request request;
    request.header = decode_request_header(frame.data()).value();
    request.source = source;
    request.hashes.resize(request.header.count);
    record_hashes(frame.data() + kRequestHeaderSize, request.header.count, request.hashes.data());
    const auto bets = decode_bets(request.header, frame.data() + kRequestHeaderSize);
    for (const Bet& bet : bets.value()) append_store_line(request.lines, bet);
    return request;
}

ipc::Request open_request(const Bytes& frame) {
    ipc::Request request;
    request.header = decode_request_header(frame.data()).value();
    request.name.assign(frame.begin() + kRequestHeaderSize, frame.end());
    return request;
}

// The first row of .data/agency-1.csv, agency 1.
Bet first_row() { return make_bet(1, "Renée", "Domínguez", "44889019", "1961-09-29", 2319); }

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
    EXPECT_GE(dumps, 14u) << "expected the dumps of §2 and §8";
}

TEST(ProtocolDoc, NamesNoFileOutsideTheRepository) {
    ASSERT_TRUE(doc_found());
    for (const char* outside : {"../shared", "SPEC.md", "EXERCISES.md"})
        EXPECT_EQ(doc().text.find(outside), std::string::npos) << kDocPath << " names " << outside;
}

TEST(ProtocolDoc, QuotedRowsAreTheFirstRowsOfAgencyOne) {
    std::vector<Bet> bets;
    std::vector<std::string> rows;
    ASSERT_TRUE(load_rows("agency-1-head", bets, &rows));
    ASSERT_EQ(rows.size(), 5u);
    EXPECT_EQ(bets[0], first_row());
    std::ifstream csv(doc().root + ".data/agency-1.csv", std::ios::binary);
    if (!csv) SKIP_OR_FAIL(".data/agency-1.csv not found");
    for (const std::string& quoted : rows) {
        std::string line;
        ASSERT_TRUE(std::getline(csv, line));
        if (!line.empty() && line.back() == '\r') line.pop_back();
        EXPECT_EQ(quoted, line) << kDocPath << " quotes the first rows of .data/agency-1.csv";
    }
}

TEST(ProtocolDoc, OpenFrameNamesTheSourceOfAgencyOne) {
    Bytes frame;
    RequestHeader header;
    ASSERT_TRUE(load_request("open-frame", frame, header));
    const std::string name = source_name_for_file(".data/agency-1.csv");
    EXPECT_EQ(header, (RequestHeader{RequestType::open, 1, 0, static_cast<std::uint16_t>(name.size())}));
    EXPECT_EQ(std::string(frame.begin() + kRequestHeaderSize, frame.end()), name);
    EXPECT_TRUE(is_valid_source_name(name));
    EXPECT_EQ(encode_open_frame(1, name), frame);
    EXPECT_TRUE(section_mentions("open-frame", "`" + name + "`"));
    EXPECT_TRUE(section_mentions("open-frame", std::to_string(frame.size()) + " bytes"));
}

// §6.1: the examples of the naming rule are what bin/client does.
TEST(ProtocolDoc, SourceNameExamplesAreTheClients) {
    ASSERT_TRUE(doc_found());
    const std::string long_name = std::string(70, 'a') + ".csv";
    const std::vector<std::pair<std::string, std::string>> examples = {
        {"/data/agency-3.csv", "`agency-3.csv`"},
        {"apuestas 2024 (copia).csv", "`apuestas_2024__copia_.csv`"},
        {"Peñarol.csv", "`Pe__arol.csv`"},
    };
    for (const auto& [path, shown] : examples) {
        EXPECT_EQ("`" + source_name_for_file(path) + "`", shown) << path;
        EXPECT_TRUE(doc_mentions(shown));
    }
    EXPECT_EQ(source_name_for_file(long_name).size(), kMaxSourceName);
    EXPECT_EQ(BetSource::single(make_bet(1, "Ana", "Paz", "00000042", "1990-01-31", 7574)).name(),
              "env-00000042-7574");
    EXPECT_TRUE(doc_mentions("`env-00000042-7574`"));
}

TEST(ProtocolDoc, DigestDefinitionIsTheCodecs) {
    ASSERT_TRUE(doc_found());
    for (const char* constant : {"0xcbf29ce484222325", "0x100000001b3"}) EXPECT_TRUE(doc_mentions(constant));
    std::vector<Bet> bets;
    ASSERT_TRUE(load_rows("agency-1-head", bets));
    for (const Bet& bet : bets) {
        std::uint8_t record[kBetSize];
        encode_bet(bet, record);
        EXPECT_EQ(record_hash(record), fnv1a_64(record, sizeof record)) << bet.document;
        EXPECT_EQ(bet_hash(bet), record_hash(record)) << bet.document;
    }
}

TEST(ProtocolDoc, ResumeReplyCarriesTheDigestOfTheFirstThreeRows) {
    Bytes reply;
    ReplyHeader header;
    std::vector<Bet> bets;
    ASSERT_TRUE(load_reply("resume-reply", reply, header, kDigestSize)); // 14 bytes
    ASSERT_TRUE(load_rows("agency-1-head", bets));
    EXPECT_EQ(header, (ReplyHeader{ReplyType::resume, 3}));

    const std::vector<Bet> stored = slice(bets, 0, 3);
    const std::uint64_t digest = get_u64(reply.data() + kReplyHeaderSize);
    EXPECT_EQ(digest, digest_by_definition(stored));
    EXPECT_EQ(digest, bet_hash(stored[0]) + bet_hash(stored[1]) + bet_hash(stored[2]));
    EXPECT_EQ(digest, bet_hash(stored[2]) + bet_hash(stored[0]) + bet_hash(stored[1])) << "order-free";
    EXPECT_EQ(encode_resume_reply(3, digest), reply);

    // The text's table shows each row's hash and the sum; the sum in decimal is
    // how the journal writes it; the first addition wraps, as the text says.
    for (const Bet& bet : stored)
        EXPECT_TRUE(section_mentions("resume-reply", "| " + hex64(bet_hash(bet)) + " |")) << bet.document;
    EXPECT_TRUE(section_mentions("resume-reply", "| " + hex64(digest) + " |"));
    EXPECT_TRUE(section_mentions("resume-reply", std::to_string(digest)));
    const std::uint64_t partial = bet_hash(stored[0]) + bet_hash(stored[1]);
    EXPECT_LT(partial, bet_hash(stored[0])) << "the first addition wraps modulo 2^64";
    EXPECT_TRUE(section_mentions("resume-reply", "(" + hex64(partial) + ")"));
}

TEST(ProtocolDoc, ResumeForANewSourceIsZeroWithDigestZero) {
    Bytes reply;
    ReplyHeader header;
    ASSERT_TRUE(load_reply("resume-new", reply, header, kDigestSize));
    EXPECT_EQ(header, (ReplyHeader{ReplyType::resume, 0}));
    EXPECT_EQ(get_u64(reply.data() + kReplyHeaderSize), digest_by_definition({}));
    EXPECT_EQ(encode_resume_reply(0, 0), reply);
}

TEST(ProtocolDoc, BetsFrameCarriesTheFirstRowAtPositionZero) {
    Bytes frame;
    RequestHeader header;
    ASSERT_TRUE(load_request("bets-frame", frame, header));
    EXPECT_EQ(header, (RequestHeader{RequestType::bets, 1, 0, 1}));
    EXPECT_EQ(frame.size(), kRequestHeaderSize + kBetSize);
    EXPECT_TRUE(section_mentions("bets-frame", "158 bytes"));

    const auto bets = decode_bets(header, frame.data() + kRequestHeaderSize);
    ASSERT_TRUE(bets.ok()) << bets.reason();
    ASSERT_EQ(bets.value().size(), 1u);
    const Bet& bet = bets.value()[0];
    EXPECT_EQ(bet.first_name, "Renée");
    EXPECT_EQ(bet.last_name, "Domínguez");
    EXPECT_EQ(bet.document, "44889019");
    EXPECT_EQ(bet.birthdate, "1961-09-29");
    EXPECT_EQ(bet.number, 2319);
    EXPECT_EQ(bet, first_row());
    EXPECT_EQ(encode_bets_frame(1, 0, {first_row()}), frame);
    for (const char* stated : {"Renée", "Domínguez", "44889019", "19610929", "09 0f"})
        EXPECT_TRUE(section_mentions("bets-frame", stated));
}

TEST(ProtocolDoc, StraddlingFrameCarriesRowsTwoToFour) {
    Bytes frame;
    RequestHeader header;
    std::vector<Bet> rows;
    ASSERT_TRUE(load_request("straddle-frame", frame, header));
    ASSERT_TRUE(load_rows("agency-1-head", rows));
    EXPECT_EQ(header, (RequestHeader{RequestType::bets, 1, 2, 3}));
    EXPECT_TRUE(section_mentions("straddle-frame", std::to_string(frame.size()) + " bytes")); // 450
    const auto bets = decode_bets(header, frame.data() + kRequestHeaderSize);
    ASSERT_TRUE(bets.ok()) << bets.reason();
    EXPECT_EQ(bets.value(), slice(rows, 2, 5));
    EXPECT_EQ(encode_bets_frame(1, 2, slice(rows, 2, 5)), frame);
    EXPECT_TRUE(section_mentions("straddle-frame", "09222931")) << "the leading zero the doc points out";
}

// §8's story, told to the real coordinator: it answers with the doc's bytes.
TEST(ProtocolDoc, CoordinatorAnswersTheStoryWithTheDocsBytes) {
    Bytes open, resume, straddle, ack_straddle, fenced;
    RequestHeader request;
    ReplyHeader reply;
    std::vector<Bet> rows;
    ASSERT_TRUE(load_request("open-frame", open, request));
    ASSERT_TRUE(load_request("straddle-frame", straddle, request));
    ASSERT_TRUE(load_reply("resume-reply", resume, reply, kDigestSize));
    ASSERT_TRUE(load_reply("ack-straddle", ack_straddle, reply));
    ASSERT_TRUE(load_reply("error-reply", fenced, reply));
    ASSERT_TRUE(load_rows("agency-1-head", rows));

    test_support::TempDir dir;
    test_support::StdoutCapture quiet; // the coordinator's log lines
    std::string error;
    auto coordinator = Coordinator::open({1, dir.file("bets.csv"), nullptr}, error);
    ASSERT_TRUE(coordinator) << error;

    // A first connection stores rows 0..2.
    const std::uint64_t first = coordinator->new_connection();
    const auto opened = coordinator_support::round_trip(*coordinator, open_request(open), first);
    ASSERT_TRUE(opened);
    const auto stored = coordinator_support::round_trip(*coordinator, bets_request(encode_bets_frame(1, 0, slice(rows, 0, 3)), opened->source), first);
    ASSERT_TRUE(stored);
    EXPECT_EQ(stored->frame, encode_reply(ReplyType::ack, 3));

    // A second connection opens the same source: RESUME 3 with the doc's digest.
    const std::uint64_t second = coordinator->new_connection();
    const auto reopened = coordinator_support::round_trip(*coordinator, open_request(open), second);
    ASSERT_TRUE(reopened);
    EXPECT_EQ(reopened->frame, resume);

    // The straddling frame: position 2 is skipped, 3 and 4 are stored, ACK 3.
    const auto straddled = coordinator_support::round_trip(*coordinator, bets_request(straddle, reopened->source), second);
    ASSERT_TRUE(straddled);
    EXPECT_EQ(straddled->frame, ack_straddle);
    EXPECT_EQ(straddled->stored_now, 2u);

    // The first connection was fenced by the second OPEN.
    const auto late = coordinator_support::round_trip(*coordinator, bets_request(encode_bets_frame(1, 5, {rows[0]}), opened->source), first);
    ASSERT_TRUE(late);
    EXPECT_EQ(late->frame, fenced);
    quiet.finish();

    // Rows 0..4, each once, are what the store holds.
    std::vector<Bet> in_store;
    ASSERT_TRUE(load_bets(dir.file("bets.csv"), [&](const Bet& bet) { in_store.push_back(bet); }).ok);
    EXPECT_EQ(in_store, rows);
}

TEST(ProtocolDoc, AcksCarryTheStatedCounts) {
    for (const auto& [name, value] : {std::pair{"ack", 1u}, std::pair{"ack-done", 0u}, std::pair{"ack-straddle", 3u}}) {
        SCOPED_TRACE(name);
        Bytes reply;
        ReplyHeader header;
        ASSERT_TRUE(load_reply(name, reply, header));
        EXPECT_EQ(header, (ReplyHeader{ReplyType::ack, value}));
        EXPECT_EQ(encode_reply(ReplyType::ack, value), reply);
    }
}

TEST(ProtocolDoc, DoneAndWinnersRequestsAreBareHeaders) {
    for (const auto& [name, type] : {std::pair{"done-frame", RequestType::done},
                                     std::pair{"winners-frame", RequestType::winners}}) {
        SCOPED_TRACE(name);
        Bytes frame;
        RequestHeader header;
        ASSERT_TRUE(load_request(name, frame, header));
        EXPECT_EQ(header, (RequestHeader{type, 1, 0, 0}));
        EXPECT_EQ(frame.size(), kRequestHeaderSize);
        EXPECT_EQ(encode_request(type, 1), frame);
    }
}

TEST(ProtocolDoc, WinnersReplyCarriesTheTwoStatedDocuments) {
    Bytes reply;
    ReplyHeader header;
    ASSERT_TRUE(load_reply("winners-reply", reply, header, 2 * kDocumentSize)); // 22 bytes
    EXPECT_EQ(header, (ReplyHeader{ReplyType::winners, 2}));
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
    RequestHeader header;
    ASSERT_TRUE(load_request("echo-frame", frame, header)); // 41 bytes
    ASSERT_TRUE(load_dump("echo-reply", reply));
    EXPECT_EQ(header, (RequestHeader{RequestType::echo, 0, 0, static_cast<std::uint16_t>(payload.size())}));
    EXPECT_EQ(std::string(frame.begin() + kRequestHeaderSize, frame.end()), payload);
    EXPECT_EQ(encode_echo_frame(payload), frame);
    EXPECT_TRUE(section_mentions("echo-frame", payload));
    EXPECT_TRUE(section_mentions("echo-frame", "41 bytes"));

    // What Handler::on_echo sends back: the decoded header re-encoded, then the payload.
    const auto head = encode_request_header(header);
    Bytes echoed(head.begin(), head.end());
    echoed.insert(echoed.end(), frame.begin() + kRequestHeaderSize, frame.end());
    EXPECT_EQ(echoed, frame);
    EXPECT_EQ(reply, frame) << "the ECHO reply is the request, byte for byte";
}

TEST(ProtocolDoc, EchoPayloadIsTheDefaultOfValidarEchoServer) {
    ASSERT_TRUE(doc_found());
    const std::string script = slurp(doc().root + "scripts/validar-echo-server.sh");
    if (script.empty()) SKIP_OR_FAIL("scripts/validar-echo-server.sh not found");
    const std::string key = "payload=${ECHO_PAYLOAD:-";
    const std::size_t at = script.find(key);
    ASSERT_NE(at, std::string::npos) << "the script no longer sets its default payload as " << key << "...}";
    const std::size_t end = script.find('}', at);
    ASSERT_NE(end, std::string::npos);
    EXPECT_EQ(script.substr(at + key.size(), end - at - key.size()), "hola servidor, esto es un eco")
        << kDocPath << " shows the script's default ECHO payload";
}

TEST(ProtocolDoc, ErrorReplyIsCodeEightFenced) {
    Bytes reply;
    ReplyHeader header;
    ASSERT_TRUE(load_reply("error-reply", reply, header));
    EXPECT_EQ(header, (ReplyHeader{ReplyType::error, 8}));
    EXPECT_EQ(encode_error(ErrorCode::fenced), reply);
    EXPECT_TRUE(section_mentions("error-reply", std::string("`") + to_string(ErrorCode::fenced) + "`"));
}

// §2 to §5: the numbers, type names and error names the doc lists are the code's.
TEST(ProtocolDoc, SizesTypesAndErrorNamesAreTheCodes) {
    ASSERT_TRUE(doc_found());
    EXPECT_EQ(kRequestHeaderSize, 12u);
    EXPECT_EQ(kReplyHeaderSize, 6u);
    EXPECT_EQ(kBetSize, 146u);
    EXPECT_EQ(kMaxBetsPerFrame, 56u);
    EXPECT_EQ(kMaxEchoPayload, 8180u);
    EXPECT_EQ(kMaxFrame, 8192u);
    EXPECT_EQ(kMaxSourceName, 64u);
    EXPECT_EQ(kDigestSize, 8u);
    EXPECT_TRUE(doc_mentions("12 + 56 × 146 = 8188"));
    for (std::uint16_t type = 1; type <= 5; ++type)
        EXPECT_TRUE(doc_mentions(std::to_string(type) + " " + to_string(static_cast<RequestType>(type))));
    for (std::uint32_t code = 1; code <= 8; ++code) {
        const std::string name = to_string(static_cast<ErrorCode>(code));
        EXPECT_TRUE(doc_mentions("| " + std::to_string(code) + " | `" + name + "` |")) << "code " << code;
    }
    EXPECT_STREQ(to_string(static_cast<ErrorCode>(9)), "unknown error") << "a code the doc does not list";
}

TEST(ProtocolDoc, MalformedFrameReasonsAreTheCodes) {
    ASSERT_TRUE(doc_found());
    auto reason_for = [](std::uint16_t type, std::uint32_t first, std::uint16_t count) {
        std::uint8_t bytes[kRequestHeaderSize];
        put_u16(&bytes[0], type);
        put_u32(&bytes[2], 1);
        put_u32(&bytes[6], first);
        put_u16(&bytes[10], count);
        const auto header = decode_request_header(bytes);
        EXPECT_FALSE(header.ok());
        EXPECT_EQ(header.error(), ErrorCode::malformed_frame);
        return std::string(header.reason());
    };
    for (const std::string& reason : {reason_for(9, 0, 0), reason_for(1, 0, 0), reason_for(1, 0, 57),
                                      reason_for(2, 0, 1), reason_for(3, 1, 0), reason_for(4, 0, 8181),
                                      reason_for(5, 1, 4), reason_for(5, 0, 0), reason_for(5, 0, 65)})
        EXPECT_TRUE(doc_mentions("`" + reason + "`"));
}

TEST(ProtocolDoc, InvalidBetReasonsAreTheCodes) {
    ASSERT_TRUE(doc_found());
    std::vector<Bet> bad(7, first_row());
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
