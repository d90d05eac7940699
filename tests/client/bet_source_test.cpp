// The agency's CSV bet source (CONTRACT.md §7): LF and CRLF, UTF-8 names, leading
// zeros kept, bad rows reported with their line number and skipped; and the
// source name it is OPENed under (CONTRACT.md §5).
#include "client/bet_source.hpp"
#include "common/protocol.hpp"

#include "../support/test_support.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace {

using test_support::lines_with;
using test_support::StdoutCapture;
using test_support::TempDir;

std::vector<Bet> read_all_bets(BetSource& source) {
    std::vector<Bet> bets;
    Bet bet;
    while (source.next(bet)) bets.push_back(bet);
    return bets;
}

// Readable failure messages for vectors of bets.
std::string show(const std::vector<Bet>& bets) {
    std::string out;
    for (const Bet& b : bets)
        out += std::to_string(b.agency) + "|" + b.first_name + "|" + b.last_name + "|" + b.document + "|" +
               b.birthdate + "|" + std::to_string(b.number) + "\n";
    return out;
}

const std::string kName64 = [] { std::string s; for (int i = 0; i < 32; ++i) s += "ñ"; return s; }(); // 64 bytes
const std::string kName65 = kName64 + "a";                                                             // 65 bytes

// Two valid rows, and their bets for agency 3 written out by hand.
const std::vector<std::string> kTwoRows = {"Ana,Gómez,00000042,1990-01-31,7574", "Luis,Paz,12345678,1985-12-01,1234"};
const std::vector<Bet> kTwoBets = {{3, "Ana", "Gómez", "00000042", "1990-01-31", 7574},
                                   {3, "Luis", "Paz", "12345678", "1985-12-01", 1234}};

// Rows of an agency file. The expected bets and skipped lines are written
// out by hand below.
std::vector<std::string> mixed_rows() {
    return {
        "Ana,Gómez,00000042,1990-01-31,7574",      // 1 ok
        "",                                       // 2 blank
        "Luis,Paz,12345678,1985-12-01",            // 3 four fields
        kName65 + ",Largo,1,2000-01-01,1",         // 4 name of 65 bytes
        "Sol,Ríos,12a4,1970-06-15,1",              // 5 document with a letter
        "Eva,Sosa,123456789,2001-02-28,5",         // 6 document of 9 digits
        "Teo,Vaca,1,2001-02-29,5",                 // 7 not a leap year
        "Ada,Byron,1,1815-12-10,10000",            // 8 number above 9999
        "Juan,\"Pérez, Jr\",7,2000-02-29,0",       // 9 ok (quoted comma)
        kName64 + ",Ñúñez,0,1999-12-31,9999",      // 10 ok (name of exactly 64 bytes)
        "Luz,Mar,1,2000-01-01,1,extra",            // 11 six fields
        "Noé,Arca,01000000,1950-05-05,7574",       // 12 ok
    };
}
const std::vector<Bet> kMixedBets = {
    {7, "Ana", "Gómez", "00000042", "1990-01-31", 7574},
    {7, "Juan", "Pérez, Jr", "7", "2000-02-29", 0},
    {7, kName64, "Ñúñez", "0", "1999-12-31", 9999},
    {7, "Noé", "Arca", "01000000", "1950-05-05", 7574},
};

std::string join(const std::vector<std::string>& rows, const std::string& ending) {
    std::string out;
    for (const std::string& row : rows) out += row + ending;
    return out;
}

// Each test's agency file is written into a fresh directory.
class BetSourceTest : public ::testing::Test {
protected:
    // A source for `agency` over a file holding `text`.
    std::optional<BetSource> open(const std::string& text, std::uint32_t agency) {
        return BetSource::open(dir_.write("a.csv", text), agency);
    }
    // Each skipped row is logged once with its 1-based line number (blank lines count).
    void expect_skip_warnings_name_lines(const std::string& ending);

    TempDir dir_;
};

TEST_F(BetSourceTest, MissingFileIsNothing) {
    EXPECT_FALSE(BetSource::open(dir_.file("nope.csv"), 1).has_value());
}

TEST_F(BetSourceTest, EmptyFileYieldsNoBets) {
    auto source = open("", 1);
    ASSERT_TRUE(source.has_value());
    Bet bet;
    EXPECT_FALSE(source->next(bet));
    EXPECT_EQ(source->skipped_rows(), 0u);
    EXPECT_FALSE(source->read_error());
}

TEST_F(BetSourceTest, LfFileYieldsEveryBetInOrderWithTheAgency) {
    auto source = open(join(kTwoRows, "\n"), 3);
    ASSERT_TRUE(source.has_value());
    const auto bets = read_all_bets(*source);
    EXPECT_EQ(bets, kTwoBets) << show(bets);
    EXPECT_EQ(source->skipped_rows(), 0u);
}

TEST_F(BetSourceTest, CrlfFileYieldsTheSameBets) {
    auto source = open(join(kTwoRows, "\r\n"), 3);
    ASSERT_TRUE(source.has_value());
    const auto bets = read_all_bets(*source);
    EXPECT_EQ(bets, kTwoBets) << show(bets);
    EXPECT_EQ(source->skipped_rows(), 0u);
}

TEST_F(BetSourceTest, LastRowWithoutLineEndingIsRead) {
    for (const std::string ending : {"", "\r"}) {
        auto source = open("Ana,Gómez,1,1990-01-31,1\nEva,Sosa,2,1990-01-31,2" + ending, 1);
        ASSERT_TRUE(source.has_value());
        const auto bets = read_all_bets(*source);
        ASSERT_EQ(bets.size(), 2u) << show(bets);
        EXPECT_EQ(bets[1], (Bet{1, "Eva", "Sosa", "2", "1990-01-31", 2}));
    }
}

TEST_F(BetSourceTest, BlankLinesAreSkippedWithoutCountingAsBad) {
    auto source = open("\nAna,Gómez,1,1990-01-31,1\n\n   \n\t\r\nEva,Sosa,2,1990-01-31,2\n\n", 1);
    ASSERT_TRUE(source.has_value());
    const auto bets = read_all_bets(*source);
    ASSERT_EQ(bets.size(), 2u) << show(bets);
    EXPECT_EQ(bets[0].first_name, "Ana");
    EXPECT_EQ(bets[1].first_name, "Eva");
    EXPECT_EQ(source->skipped_rows(), 0u);
}

TEST_F(BetSourceTest, BadRowsAreSkippedAndCountedAndLaterRowsStillReturned) {
    auto source = open(join(mixed_rows(), "\n"), 7);
    ASSERT_TRUE(source.has_value());
    StdoutCapture capture;
    const auto bets = read_all_bets(*source);
    capture.finish();
    EXPECT_EQ(bets, kMixedBets) << show(bets);
    EXPECT_EQ(source->skipped_rows(), 7u);
    EXPECT_FALSE(source->read_error());
}

TEST_F(BetSourceTest, CrlfFileWithBadRowsGivesTheSameResult) {
    auto source = open(join(mixed_rows(), "\r\n"), 7);
    ASSERT_TRUE(source.has_value());
    StdoutCapture capture;
    const auto bets = read_all_bets(*source);
    capture.finish();
    EXPECT_EQ(bets, kMixedBets) << show(bets);
    EXPECT_EQ(source->skipped_rows(), 7u);
}

void BetSourceTest::expect_skip_warnings_name_lines(const std::string& ending) {
    auto source = open(join(mixed_rows(), ending), 7);
    ASSERT_TRUE(source.has_value());
    StdoutCapture capture;
    read_all_bets(*source);
    const std::string out = capture.finish();
    const auto warnings = lines_with(out, "action: leer_apuesta");
    ASSERT_EQ(warnings.size(), 7u) << out;
    const int expected_lines[] = {3, 4, 5, 6, 7, 8, 11};
    for (std::size_t i = 0; i < warnings.size(); ++i) {
        SCOPED_TRACE(warnings[i]);
        EXPECT_NE(warnings[i].find("result: fail"), std::string::npos);
        EXPECT_NE(warnings[i].find("WARNING"), std::string::npos);
        EXPECT_NE(warnings[i].find(" | linea: " + std::to_string(expected_lines[i]) + " |"), std::string::npos);
    }
}

TEST_F(BetSourceTest, SkipWarningsNameTheLineNumberLf) { expect_skip_warnings_name_lines("\n"); }
TEST_F(BetSourceTest, SkipWarningsNameTheLineNumberCrlf) { expect_skip_warnings_name_lines("\r\n"); }

TEST_F(BetSourceTest, ValidRowsAreNotLogged) {
    auto source = open("Ana,Gómez,1,1990-01-31,1\n", 1);
    ASSERT_TRUE(source.has_value());
    StdoutCapture capture;
    read_all_bets(*source);
    EXPECT_TRUE(lines_with(capture.finish(), "leer_apuesta").empty());
}

TEST_F(BetSourceTest, BrokenQuotingIsSkipped) {
    auto source = open("\"Ana,Gómez,1,1990-01-31,1\nEva,Sosa,2,1990-01-31,2\n", 1);
    ASSERT_TRUE(source.has_value());
    StdoutCapture capture;
    const auto bets = read_all_bets(*source);
    const std::string out = capture.finish();
    ASSERT_EQ(bets.size(), 1u) << show(bets);
    EXPECT_EQ(bets[0].first_name, "Eva");
    EXPECT_EQ(source->skipped_rows(), 1u);
    EXPECT_EQ(lines_with(out, " | linea: 1 |").size(), 1u) << out;
}

TEST_F(BetSourceTest, Utf8NamesAreKeptByteForByte) {
    const std::string first = "José María 李 🎲";
    const std::string last = "Ñúñez-Göthe d'Ávila";
    auto source = open(first + "," + last + ",5,1990-01-31,1\n", 2);
    ASSERT_TRUE(source.has_value());
    Bet bet;
    ASSERT_TRUE(source->next(bet));
    EXPECT_EQ(bet.first_name, first);
    EXPECT_EQ(bet.last_name, last);
}

TEST_F(BetSourceTest, LeadingZeroDocumentsAreKept) {
    auto source = open("A,B,00000001,1990-01-31,1\nC,D,0,1990-01-31,2\nE,F,007,1990-01-31,3\n", 2);
    ASSERT_TRUE(source.has_value());
    const auto bets = read_all_bets(*source);
    ASSERT_EQ(bets.size(), 3u) << show(bets);
    EXPECT_EQ(bets[0].document, "00000001");
    EXPECT_EQ(bets[1].document, "0");
    EXPECT_EQ(bets[2].document, "007");
}

TEST_F(BetSourceTest, NextAfterTheEndStaysFalse) {
    auto source = open("A,B,1,1990-01-31,1\n", 2);
    ASSERT_TRUE(source.has_value());
    Bet bet;
    EXPECT_TRUE(source->next(bet));
    EXPECT_FALSE(source->next(bet));
    EXPECT_FALSE(source->next(bet));
}

TEST_F(BetSourceTest, SingleYieldsExactlyThatOneBet) {
    const Bet given{9, "María", "Ñúñez", "00000042", "2000-02-29", 7574};
    BetSource source = BetSource::single(given);
    Bet bet;
    ASSERT_TRUE(source.next(bet));
    EXPECT_EQ(bet, given);
    EXPECT_FALSE(source.next(bet));
    EXPECT_FALSE(source.next(bet));
    EXPECT_EQ(source.skipped_rows(), 0u);
    EXPECT_FALSE(source.read_error());
}

TEST_F(BetSourceTest, FileSourceIsNamedAfterTheFile) {
    auto source = BetSource::open(dir_.write("agency-3.csv", ""), 3);
    ASSERT_TRUE(source.has_value());
    EXPECT_EQ(source->name(), "agency-3.csv");
}

TEST_F(BetSourceTest, SingleBetSourceIsNamedAfterItsDocumentAndNumber) {
    EXPECT_EQ(BetSource::single(Bet{1, "Ana", "Paz", "00000042", "2000-02-29", 7574}).name(), "env-00000042-7574");
    EXPECT_EQ(BetSource::single(Bet{1, "Ana", "Paz", "7", "2000-02-29", 0}).name(), "env-7-0");
}

TEST(SourceNameTest, PlainFileNameIsKept) {
    EXPECT_EQ(source_name_for_file("agency-3.csv"), "agency-3.csv");
    EXPECT_EQ(source_name_for_file("A.b_c-9"), "A.b_c-9");
}

TEST(SourceNameTest, DirectoriesAreDropped) {
    EXPECT_EQ(source_name_for_file("/data/agencies/agency-3.csv"), "agency-3.csv");
    EXPECT_EQ(source_name_for_file(".data/agency-1.csv"), "agency-1.csv");
    EXPECT_EQ(source_name_for_file("../x/y.csv"), "y.csv");
}

TEST(SourceNameTest, CharactersOutsideTheAlphabetBecomeUnderscores) {
    EXPECT_EQ(source_name_for_file("mis apuestas.csv"), "mis_apuestas.csv");
    // "ñ" is two bytes of UTF-8: each becomes '_'.
    EXPECT_EQ(source_name_for_file("/tmp/año 2024.csv"), "a__o_2024.csv");
    EXPECT_EQ(source_name_for_file("a+b,c;d\te"), "a_b_c_d_e");
}

TEST(SourceNameTest, LongNameKeepsItsLast64Bytes) {
    const std::string tail = std::string(60, 'x') + ".csv";
    const std::string name = source_name_for_file("/data/" + std::string(10, 'y') + tail);
    EXPECT_EQ(name, tail);
    EXPECT_EQ(source_name_for_file(tail), tail); // exactly 64: kept whole
}

TEST(SourceNameTest, EmptyBaseNameIsAnUnderscore) {
    EXPECT_EQ(source_name_for_file(""), "_");
    EXPECT_EQ(source_name_for_file("/data/"), "_");
}

TEST(SourceNameTest, EveryNameIsAValidSourceName) {
    const std::vector<std::string> paths = {"", "/", "agency-3.csv", "/a b/ñ ü.csv", "\xFF\xFE", std::string(200, '#')};
    for (const std::string& path : paths) {
        SCOPED_TRACE(path);
        EXPECT_TRUE(wire::is_valid_source_name(source_name_for_file(path)));
    }
}

TEST(BetFromRowTest, ReportsWhyARowCannotBeSent) {
    Bet bet;
    EXPECT_TRUE(bet_from_row({"A", "B", "1", "1990-01-31"}, 1, bet).has_value());
    EXPECT_TRUE(bet_from_row({"A", "B", "1", "1990-01-31", "10000"}, 1, bet).has_value());
    EXPECT_TRUE(bet_from_row({"A", "B", "1", "1990-13-01", "1"}, 1, bet).has_value());
    EXPECT_TRUE(bet_from_row({"", "B", "1", "1990-01-01", "1"}, 1, bet).has_value());
    EXPECT_TRUE(bet_from_row({"A", "B", "", "1990-01-01", "1"}, 1, bet).has_value());
    ASSERT_FALSE(bet_from_row({"A", "B", "0042", "1990-01-31", "9999"}, 5, bet).has_value());
    EXPECT_EQ(bet, (Bet{5, "A", "B", "0042", "1990-01-31", 9999}));
}

} // namespace
