// The agency's CSV bet source (SPEC §7): LF and CRLF, UTF-8 names, leading
// zeros kept, bad rows reported with their line number and skipped.
#include "client/bet_source.hpp"

#include "common/log.hpp"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace {

class TempDir {
public:
    TempDir() {
        char pattern[] = "/tmp/bet_source_test.XXXXXX";
        const char* made = ::mkdtemp(pattern);
        if (made == nullptr) std::abort();
        path_ = made;
    }
    ~TempDir() {
        std::error_code ignored;
        std::filesystem::remove_all(path_, ignored);
    }
    std::string write(const std::string& name, const std::string& content) const {
        const std::string file = path_ + "/" + name;
        std::ofstream(file, std::ios::binary) << content;
        return file;
    }
    std::string file(const std::string& name) const { return path_ + "/" + name; }

private:
    std::string path_;
};

// Everything written to fd 1 between construction and finish().
class StdoutCapture {
public:
    explicit StdoutCapture(const std::string& path) : path_(path) {
        set_log_level(LogLevel::info); // the default; another test may have changed it
        std::fflush(stdout);
        saved_ = ::dup(STDOUT_FILENO);
        const int file = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (saved_ < 0 || file < 0 || ::dup2(file, STDOUT_FILENO) < 0) std::abort();
        ::close(file);
    }
    ~StdoutCapture() { restore(); }
    std::string finish() {
        restore();
        std::ifstream in(path_, std::ios::binary);
        std::ostringstream text;
        text << in.rdbuf();
        return text.str();
    }

private:
    void restore() {
        if (saved_ < 0) return;
        std::fflush(stdout);
        ::dup2(saved_, STDOUT_FILENO);
        ::close(saved_);
        saved_ = -1;
    }
    std::string path_;
    int saved_ = -1;
};

std::vector<std::string> lines_with(const std::string& text, const std::string& needle) {
    std::vector<std::string> found;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);)
        if (line.find(needle) != std::string::npos) found.push_back(line);
    return found;
}

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

TEST(BetSourceTest, MissingFileIsNothing) {
    TempDir dir;
    EXPECT_FALSE(BetSource::open(dir.file("nope.csv"), 1).has_value());
}

TEST(BetSourceTest, EmptyFileYieldsNoBets) {
    TempDir dir;
    auto source = BetSource::open(dir.write("a.csv", ""), 1);
    ASSERT_TRUE(source.has_value());
    Bet bet;
    EXPECT_FALSE(source->next(bet));
    EXPECT_EQ(source->skipped_rows(), 0u);
    EXPECT_FALSE(source->read_error());
}

TEST(BetSourceTest, LfFileYieldsEveryBetInOrderWithTheAgency) {
    TempDir dir;
    auto source = BetSource::open(dir.write("a.csv",
                                            "Ana,Gómez,00000042,1990-01-31,7574\n"
                                            "Luis,Paz,12345678,1985-12-01,1234\n"),
                                  3);
    ASSERT_TRUE(source.has_value());
    const std::vector<Bet> expected = {{3, "Ana", "Gómez", "00000042", "1990-01-31", 7574},
                                       {3, "Luis", "Paz", "12345678", "1985-12-01", 1234}};
    const auto bets = read_all_bets(*source);
    EXPECT_EQ(bets, expected) << show(bets);
    EXPECT_EQ(source->skipped_rows(), 0u);
}

TEST(BetSourceTest, CrlfFileYieldsTheSameBets) {
    TempDir dir;
    auto source = BetSource::open(dir.write("a.csv",
                                            "Ana,Gómez,00000042,1990-01-31,7574\r\n"
                                            "Luis,Paz,12345678,1985-12-01,1234\r\n"),
                                  3);
    ASSERT_TRUE(source.has_value());
    const std::vector<Bet> expected = {{3, "Ana", "Gómez", "00000042", "1990-01-31", 7574},
                                       {3, "Luis", "Paz", "12345678", "1985-12-01", 1234}};
    const auto bets = read_all_bets(*source);
    EXPECT_EQ(bets, expected) << show(bets);
    EXPECT_EQ(source->skipped_rows(), 0u);
}

TEST(BetSourceTest, LastRowWithoutLineEndingIsRead) {
    TempDir dir;
    for (const std::string ending : {"", "\r"}) {
        auto source = BetSource::open(dir.write("a.csv", "Ana,Gómez,1,1990-01-31,1\nEva,Sosa,2,1990-01-31,2" + ending), 1);
        ASSERT_TRUE(source.has_value());
        const auto bets = read_all_bets(*source);
        ASSERT_EQ(bets.size(), 2u) << show(bets);
        EXPECT_EQ(bets[1], (Bet{1, "Eva", "Sosa", "2", "1990-01-31", 2}));
    }
}

TEST(BetSourceTest, BlankLinesAreSkippedWithoutCountingAsBad) {
    TempDir dir;
    auto source = BetSource::open(
        dir.write("a.csv", "\nAna,Gómez,1,1990-01-31,1\n\n   \n\t\r\nEva,Sosa,2,1990-01-31,2\n\n"), 1);
    ASSERT_TRUE(source.has_value());
    const auto bets = read_all_bets(*source);
    ASSERT_EQ(bets.size(), 2u) << show(bets);
    EXPECT_EQ(bets[0].first_name, "Ana");
    EXPECT_EQ(bets[1].first_name, "Eva");
    EXPECT_EQ(source->skipped_rows(), 0u);
}

TEST(BetSourceTest, BadRowsAreSkippedAndCountedAndLaterRowsStillReturned) {
    TempDir dir;
    auto source = BetSource::open(dir.write("a.csv", join(mixed_rows(), "\n")), 7);
    ASSERT_TRUE(source.has_value());
    StdoutCapture capture(dir.file("stdout.txt"));
    const auto bets = read_all_bets(*source);
    capture.finish();
    EXPECT_EQ(bets, kMixedBets) << show(bets);
    EXPECT_EQ(source->skipped_rows(), 7u);
    EXPECT_FALSE(source->read_error());
}

TEST(BetSourceTest, CrlfFileWithBadRowsGivesTheSameResult) {
    TempDir dir;
    auto source = BetSource::open(dir.write("a.csv", join(mixed_rows(), "\r\n")), 7);
    ASSERT_TRUE(source.has_value());
    StdoutCapture capture(dir.file("stdout.txt"));
    const auto bets = read_all_bets(*source);
    capture.finish();
    EXPECT_EQ(bets, kMixedBets) << show(bets);
    EXPECT_EQ(source->skipped_rows(), 7u);
}

// Each skipped row is logged once with its 1-based line number (blank lines count).
void expect_skip_warnings_name_lines(const std::string& ending) {
    TempDir dir;
    auto source = BetSource::open(dir.write("a.csv", join(mixed_rows(), ending)), 7);
    ASSERT_TRUE(source.has_value());
    StdoutCapture capture(dir.file("stdout.txt"));
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

TEST(BetSourceTest, SkipWarningsNameTheLineNumberLf) { expect_skip_warnings_name_lines("\n"); }
TEST(BetSourceTest, SkipWarningsNameTheLineNumberCrlf) { expect_skip_warnings_name_lines("\r\n"); }

TEST(BetSourceTest, ValidRowsAreNotLogged) {
    TempDir dir;
    auto source = BetSource::open(dir.write("a.csv", "Ana,Gómez,1,1990-01-31,1\n"), 1);
    ASSERT_TRUE(source.has_value());
    StdoutCapture capture(dir.file("stdout.txt"));
    read_all_bets(*source);
    EXPECT_TRUE(lines_with(capture.finish(), "leer_apuesta").empty());
}

TEST(BetSourceTest, BrokenQuotingIsSkipped) {
    TempDir dir;
    auto source = BetSource::open(dir.write("a.csv", "\"Ana,Gómez,1,1990-01-31,1\nEva,Sosa,2,1990-01-31,2\n"), 1);
    ASSERT_TRUE(source.has_value());
    StdoutCapture capture(dir.file("stdout.txt"));
    const auto bets = read_all_bets(*source);
    const std::string out = capture.finish();
    ASSERT_EQ(bets.size(), 1u) << show(bets);
    EXPECT_EQ(bets[0].first_name, "Eva");
    EXPECT_EQ(source->skipped_rows(), 1u);
    EXPECT_EQ(lines_with(out, " | linea: 1 |").size(), 1u) << out;
}

TEST(BetSourceTest, Utf8NamesAreKeptByteForByte) {
    TempDir dir;
    const std::string first = "José María 李 🎲";
    const std::string last = "Ñúñez-Göthe d'Ávila";
    auto source = BetSource::open(dir.write("a.csv", first + "," + last + ",5,1990-01-31,1\n"), 2);
    ASSERT_TRUE(source.has_value());
    Bet bet;
    ASSERT_TRUE(source->next(bet));
    EXPECT_EQ(bet.first_name, first);
    EXPECT_EQ(bet.last_name, last);
}

TEST(BetSourceTest, LeadingZeroDocumentsAreKept) {
    TempDir dir;
    auto source = BetSource::open(dir.write("a.csv", "A,B,00000001,1990-01-31,1\nC,D,0,1990-01-31,2\nE,F,007,1990-01-31,3\n"), 2);
    ASSERT_TRUE(source.has_value());
    const auto bets = read_all_bets(*source);
    ASSERT_EQ(bets.size(), 3u) << show(bets);
    EXPECT_EQ(bets[0].document, "00000001");
    EXPECT_EQ(bets[1].document, "0");
    EXPECT_EQ(bets[2].document, "007");
}

TEST(BetSourceTest, NextAfterTheEndStaysFalse) {
    TempDir dir;
    auto source = BetSource::open(dir.write("a.csv", "A,B,1,1990-01-31,1\n"), 2);
    ASSERT_TRUE(source.has_value());
    Bet bet;
    EXPECT_TRUE(source->next(bet));
    EXPECT_FALSE(source->next(bet));
    EXPECT_FALSE(source->next(bet));
}

TEST(BetSourceTest, SingleYieldsExactlyThatOneBet) {
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
