// The CSV bet store (CONTRACT.md §6): line format, store_bets / load_bets, the sliced StoreScan.
#include "common/bet_store.hpp"

#include "../support/test_support.hpp"

#include <gtest/gtest.h>

#include <sys/stat.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

namespace {

using test_support::make_bet;
using test_support::slurp;
using test_support::TempDir;

struct Loaded {
    LoadResult result;
    std::vector<Bet> bets;
};

Loaded load(const std::string& path) {
    Loaded loaded;
    loaded.result = load_bets(path, [&](const Bet& bet) { loaded.bets.push_back(bet); });
    return loaded;
}

// What load() makes of a store file holding `text`.
Loaded load_text(const std::string& text) {
    TempDir dir;
    const std::string path = dir.write("bets.csv", text);
    return load(path);
}

// `count` bets whose documents are their positions 0, 1, 2, ... (file order is visible).
std::vector<Bet> numbered_bets(std::size_t count) {
    std::vector<Bet> bets;
    for (std::size_t i = 0; i < count; ++i)
        bets.push_back(make_bet(1 + i % 5, i % 3 ? "Ana" : "Ana, María", "Gómez \"G\"", std::to_string(i),
                                "1990-05-17", static_cast<std::uint16_t>(i % 10000)));
    return bets;
}

// A store at `path` holding `bets`; fails the test if it cannot be written.
void write_store(const std::string& path, const std::vector<Bet>& bets) {
    BetStore store = BetStore::open(path);
    ASSERT_TRUE(store.is_open()) << std::strerror(errno);
    ASSERT_TRUE(store_bets(store, bets));
}

// What a StoreScan read, slice by slice, with a budget of `bytes` per slice.
struct Scanned {
    LoadResult result;
    std::vector<Bet> bets;
    std::size_t slices = 0;            // advance() calls that said there was more
    std::size_t after_first_slice = 0; // bets visited by the first call
};

Scanned scan(const std::string& path, std::size_t bytes) {
    Scanned scanned;
    StoreScan store(path);
    const auto visit = [&](const Bet& bet) { scanned.bets.push_back(bet); };
    bool more = store.advance(bytes, visit);
    scanned.after_first_slice = scanned.bets.size();
    for (; more; more = store.advance(bytes, visit)) ++scanned.slices;
    scanned.result = store.result();
    return scanned;
}

} // namespace

// ---------------------------------------------------------------- line format

TEST(CommonBetStore, StoreLineFormatIsAgencyNamesDocumentDateNumber) {
    std::string out;
    append_store_line(out, make_bet(3, "Ana", "Lorca", "00000042", "1999-03-17", 7574));
    EXPECT_EQ(out, "3,Ana,Lorca,00000042,1999-03-17,7574\n");
}

TEST(CommonBetStore, StoreLineQuotesLikeQuoteMinimal) {
    std::string out;
    append_store_line(out, make_bet(12, "María José", "Pérez, \"La\" Gómez", "7", "2000-02-29", 0));
    EXPECT_EQ(out, "12,María José,\"Pérez, \"\"La\"\" Gómez\",7,2000-02-29,0\n");
}

TEST(CommonBetStore, StoreLineAppends) {
    std::string out = "previous\n";
    append_store_line(out, make_bet(1, "A", "B", "1", "2000-01-01", 1));
    EXPECT_EQ(out, "previous\n1,A,B,1,2000-01-01,1\n");
}

TEST(CommonBetStore, ParseStoreLineReadsEveryField) {
    Bet bet;
    ASSERT_TRUE(parse_store_line("65535,\"Ana, la\",\"O\"\"Neil\",00000042,1999-03-17,9999", bet));
    EXPECT_EQ(bet, make_bet(65535, "Ana, la", "O\"Neil", "00000042", "1999-03-17", 9999));
}

TEST(CommonBetStore, ParseStoreLineRejectsMalformedLines) {
    Bet bet;
    EXPECT_FALSE(parse_store_line("", bet));
    EXPECT_FALSE(parse_store_line("1,Ana,Lorca,42,1999-03-17", bet));          // 5 fields
    EXPECT_FALSE(parse_store_line("1,Ana,Lorca,42,1999-03-17,1,x", bet));      // 7 fields
    EXPECT_FALSE(parse_store_line("x,Ana,Lorca,42,1999-03-17,1", bet));        // agency
    EXPECT_FALSE(parse_store_line(",Ana,Lorca,42,1999-03-17,1", bet));         // empty agency
    EXPECT_FALSE(parse_store_line("-1,Ana,Lorca,42,1999-03-17,1", bet));       // negative agency
    EXPECT_FALSE(parse_store_line("1,Ana,Lorca,42,1999-03-17,70000", bet));    // number > u16
    EXPECT_FALSE(parse_store_line("1,Ana,Lorca,42,1999-03-17,12x", bet));      // number
    EXPECT_FALSE(parse_store_line("1,Ana,Lorca,42,1999-03-17,", bet));         // empty number
    EXPECT_FALSE(parse_store_line("1,\"Ana,Lorca,42,1999-03-17,1", bet));      // broken quote
}

TEST(CommonBetStore, LineRoundTripsTrickyBets) {
    const std::vector<Bet> bets{
        make_bet(1, "Ana, María", "\"Tano\"", "00000042", "2000-02-29", 7574),
        make_bet(2, "Ñandú", "Muñoz-Göğüş", "0", "1900-03-01", 0),
        make_bet(3, "\"", ",", "99999999", "0001-01-01", 9999),
        make_bet(4, " x ", "a\"\"b", "00000000", "2024-12-31", 1),
    };
    for (const Bet& bet : bets) {
        std::string line;
        append_store_line(line, bet);
        ASSERT_EQ(line.back(), '\n');
        line.pop_back();
        Bet parsed;
        ASSERT_TRUE(parse_store_line(line, parsed)) << line;
        EXPECT_EQ(parsed, bet) << line;
    }
}

// ---------------------------------------------------------------- store + load

TEST(CommonBetStore, StoreThenLoadRoundTripsExactly) {
    TempDir dir;
    const std::string path = dir.file("bets.csv");
    const std::vector<Bet> bets{
        make_bet(1, "Ana, María", "Pérez \"La\" Gómez", "00000042", "2000-02-29", 7574),
        make_bet(2, "José", "Ñúñez", "00000001", "1985-12-31", 0),
        make_bet(65535, "ñññ", "O'Brien, Jr.", "12345678", "1970-01-01", 9999),
    };
    BetStore store = BetStore::open(path);
    ASSERT_TRUE(store.is_open()) << std::strerror(errno);
    EXPECT_EQ(store.path(), path);
    ASSERT_TRUE(store_bets(store, bets));
    store.close();
    EXPECT_FALSE(store.is_open());

    const Loaded loaded = load(path);
    EXPECT_TRUE(loaded.result.ok) << loaded.result.error;
    EXPECT_EQ(loaded.result.bets, 3u);
    EXPECT_EQ(loaded.bets, bets);
}

TEST(CommonBetStore, StoreAppendsAcrossOpens) {
    TempDir dir;
    const std::string path = dir.file("bets.csv");
    const Bet first = make_bet(1, "A", "B", "1", "2000-01-01", 1);
    const Bet second = make_bet(2, "C", "D", "2", "2000-01-02", 2);
    {
        BetStore store = BetStore::open(path);
        ASSERT_TRUE(store.is_open());
        ASSERT_TRUE(store_bets(store, {first}));
    }
    {
        BetStore store = BetStore::open(path);
        ASSERT_TRUE(store.is_open());
        ASSERT_TRUE(store_bets(store, {second}));
    }
    EXPECT_EQ(slurp(path), "1,A,B,1,2000-01-01,1\n2,C,D,2,2000-01-02,2\n");
    EXPECT_EQ(load(path).bets, (std::vector<Bet>{first, second}));
}

TEST(CommonBetStore, StoringNoBetsWritesNothing) {
    TempDir dir;
    const std::string path = dir.file("bets.csv");
    BetStore store = BetStore::open(path);
    ASSERT_TRUE(store.is_open());
    EXPECT_TRUE(store_bets(store, {}));
    EXPECT_EQ(slurp(path), "");
}

TEST(CommonBetStore, OpenInMissingDirectoryFails) {
    TempDir dir;
    BetStore store = BetStore::open(dir.file("no/such/dir/bets.csv"));
    EXPECT_FALSE(store.is_open());
}

TEST(CommonBetStore, LoadStreamsInFileOrder) {
    const Loaded loaded = load_text("3,C,C,3,2000-01-03,3\n"
                                    "1,A,A,1,2000-01-01,1\n"
                                    "2,B,B,2,2000-01-02,2\n");
    ASSERT_TRUE(loaded.result.ok);
    EXPECT_EQ(loaded.result.bets, 3u);
    ASSERT_EQ(loaded.bets.size(), 3u);
    EXPECT_EQ(loaded.bets[0].agency, 3u);
    EXPECT_EQ(loaded.bets[1].agency, 1u);
    EXPECT_EQ(loaded.bets[2].agency, 2u);
}

TEST(CommonBetStore, MissingFileIsAnEmptyStore) {
    TempDir dir;
    const Loaded loaded = load(dir.file("never-created.csv"));
    EXPECT_TRUE(loaded.result.ok);
    EXPECT_EQ(loaded.result.bets, 0u);
    EXPECT_EQ(loaded.result.bad_line, 0u);
    EXPECT_TRUE(loaded.bets.empty());
}

TEST(CommonBetStore, EmptyFileIsAnEmptyStore) {
    const Loaded loaded = load_text("");
    EXPECT_TRUE(loaded.result.ok);
    EXPECT_EQ(loaded.result.bets, 0u);
}

TEST(CommonBetStore, MalformedLineIsReportedWithItsOneBasedNumber) {
    const Loaded loaded = load_text("1,A,A,1,2000-01-01,1\n"
                                    "1,B,B,2,2000-01-02,2\n"
                                    "1,C,C,3,2000-01-03,3\n"
                                    "1,\"broken,C,3,2000-01-03,3\n"
                                    "1,E,E,5,2000-01-05,5\n");
    EXPECT_FALSE(loaded.result.ok);
    EXPECT_EQ(loaded.result.bad_line, 4u);
    EXPECT_EQ(loaded.result.bets, 3u);
    EXPECT_EQ(loaded.bets.size(), 3u);
    EXPECT_FALSE(loaded.result.error.empty());
}

TEST(CommonBetStore, MalformedFirstLineIsLineOne) {
    const Loaded loaded = load_text("garbage\n1,A,A,1,2000-01-01,1\n");
    EXPECT_FALSE(loaded.result.ok);
    EXPECT_EQ(loaded.result.bad_line, 1u);
    EXPECT_EQ(loaded.result.bets, 0u);
    EXPECT_TRUE(loaded.bets.empty());
}

TEST(CommonBetStore, BlankLinesAreSkippedButCounted) {
    const Loaded loaded = load_text("1,A,A,1,2000-01-01,1\n\n\r\nbad line\n");
    EXPECT_FALSE(loaded.result.ok);
    EXPECT_EQ(loaded.result.bets, 1u);
    EXPECT_EQ(loaded.result.bad_line, 4u);
}

TEST(CommonBetStore, CrlfLinesAreAccepted) {
    const Loaded loaded = load_text("1,Ana,\"Lorca, hijo\",00000042,1999-03-17,7574\r\n2,Bo,Cid,7,2001-01-01,12\r\n");
    ASSERT_TRUE(loaded.result.ok) << loaded.result.error;
    EXPECT_EQ(loaded.bets, (std::vector<Bet>{make_bet(1, "Ana", "Lorca, hijo", "00000042", "1999-03-17", 7574),
                                             make_bet(2, "Bo", "Cid", "7", "2001-01-01", 12)}));
}

TEST(CommonBetStore, LastLineWithoutNewlineIsLoaded) {
    const Loaded loaded = load_text("1,A,A,1,2000-01-01,1\n2,B,B,2,2000-01-02,7574");
    ASSERT_TRUE(loaded.result.ok);
    ASSERT_EQ(loaded.result.bets, 2u);
    EXPECT_EQ(loaded.bets[1], make_bet(2, "B", "B", "2", "2000-01-02", 7574));
}

TEST(CommonBetStore, LoadingADirectoryIsAnError) {
    TempDir dir;
    const std::string path = dir.file("sub");
    ASSERT_EQ(::mkdir(path.c_str(), 0755), 0);
    const Loaded loaded = load(path);
    EXPECT_FALSE(loaded.result.ok);
    EXPECT_FALSE(loaded.result.error.empty());
}

TEST(CommonBetStore, LargeStoreLoadsWithRightCountAndWinners) {
    TempDir dir;
    const std::string path = dir.file("bets.csv");
    constexpr std::uint32_t kBets = 200000;
    std::uint64_t expected_winners = 0;
    std::uint64_t expected_winners_agency3 = 0;
    {
        BetStore store = BetStore::open(path);
        ASSERT_TRUE(store.is_open());
        std::vector<Bet> chunk;
        for (std::uint32_t i = 0; i < kBets; ++i) {
            const std::uint32_t agency = 1 + i % 5;
            const auto number = static_cast<std::uint16_t>(i % 997 == 0 ? 7574 : (i * 31) % 7574);
            if (number == 7574) {
                ++expected_winners;
                if (agency == 3) ++expected_winners_agency3;
            }
            chunk.push_back(make_bet(agency, i % 3 ? "Ana" : "Ana, María", "Gómez \"G\"",
                                     std::to_string(i % 100000000), "1990-05-17", number));
            if (chunk.size() == 1000) {
                ASSERT_TRUE(store_bets(store, chunk));
                chunk.clear();
            }
        }
        ASSERT_TRUE(store_bets(store, chunk));
    }
    ASSERT_GT(expected_winners, 0u);
    std::uint64_t visited = 0, winners = 0, winners_agency3 = 0;
    std::uint32_t expected_document = 0;
    bool in_order = true;
    const LoadResult result = load_bets(path, [&](const Bet& bet) {
        in_order = in_order && bet.document == std::to_string(expected_document++);
        ++visited;
        if (has_won(bet)) {
            ++winners;
            if (bet.agency == 3) ++winners_agency3;
        }
    });
    ASSERT_TRUE(result.ok) << result.error << " at line " << result.bad_line;
    EXPECT_EQ(result.bets, kBets);
    EXPECT_EQ(visited, kBets);
    EXPECT_TRUE(in_order);
    EXPECT_EQ(winners, expected_winners);
    EXPECT_EQ(winners_agency3, expected_winners_agency3);
}

// ---------------------------------------------------------------- StoreScan (the draw, a slice at a time)

// Big enough for several slices whatever the read size, so that lines also
// straddle the slice boundaries.
constexpr std::size_t kScanBets = 20000;

TEST(CommonStoreScan, SmallBudgetReadsTheStoreInSeveralSlices) {
    TempDir dir;
    const std::string path = dir.file("bets.csv");
    write_store(path, numbered_bets(kScanBets));
    const Scanned scanned = scan(path, 1);
    EXPECT_GT(scanned.slices, 1u);
    EXPECT_GT(scanned.after_first_slice, 0u);
    EXPECT_LT(scanned.after_first_slice, kScanBets) << "the first slice read the whole store";
}

TEST(CommonStoreScan, SlicesVisitEveryBetOnceInFileOrder) {
    TempDir dir;
    const std::string path = dir.file("bets.csv");
    const std::vector<Bet> bets = numbered_bets(kScanBets);
    write_store(path, bets);
    const Scanned scanned = scan(path, 1);
    ASSERT_TRUE(scanned.result.ok) << scanned.result.error << " at line " << scanned.result.bad_line;
    EXPECT_EQ(scanned.result.bets, kScanBets);
    EXPECT_TRUE(scanned.bets == bets) << "visited " << scanned.bets.size() << " of " << bets.size();
}

TEST(CommonStoreScan, SlicedScanGivesWhatLoadBetsGives) {
    TempDir dir;
    const std::string path = dir.file("bets.csv");
    write_store(path, numbered_bets(kScanBets));
    const Scanned scanned = scan(path, 1000);
    const Loaded loaded = load(path);
    EXPECT_EQ(scanned.result.ok, loaded.result.ok);
    EXPECT_EQ(scanned.result.bets, loaded.result.bets);
    EXPECT_TRUE(scanned.bets == loaded.bets);
}

TEST(CommonStoreScan, AdvanceAfterTheEndStaysFalseAndVisitsNothing) {
    TempDir dir;
    const std::string path = dir.write("bets.csv", "1,A,A,1,2000-01-01,1\n");
    StoreScan store(path);
    std::size_t visited = 0;
    const auto visit = [&](const Bet&) { ++visited; };
    while (store.advance(1, visit)) {}
    EXPECT_EQ(visited, 1u);
    EXPECT_FALSE(store.advance(1, visit));
    EXPECT_EQ(visited, 1u);
    EXPECT_TRUE(store.result().ok);
    EXPECT_EQ(store.result().bets, 1u);
}

TEST(CommonStoreScan, MissingFileIsAnEmptyStore) {
    TempDir dir;
    StoreScan store(dir.file("never-created.csv"));
    std::size_t visited = 0;
    EXPECT_FALSE(store.advance(1, [&](const Bet&) { ++visited; }));
    EXPECT_EQ(visited, 0u);
    EXPECT_TRUE(store.result().ok);
    EXPECT_EQ(store.result().bets, 0u);
}

TEST(CommonStoreScan, MalformedLineInALaterSliceIsReportedWithItsLineNumber) {
    TempDir dir;
    const std::string path = dir.file("bets.csv");
    const std::vector<Bet> bets = numbered_bets(kScanBets);
    const std::size_t bad = kScanBets * 3 / 4; // 0-based: line bad + 1
    write_store(path, {bets.begin(), bets.begin() + static_cast<std::ptrdiff_t>(bad)});
    test_support::spit(path, "1,\"broken,line\n", true);
    write_store(path, {bets.begin() + static_cast<std::ptrdiff_t>(bad) + 1, bets.end()});

    const Scanned scanned = scan(path, 1);
    EXPECT_GT(scanned.slices, 0u) << "the bad line was in the first slice: make the store larger";
    EXPECT_FALSE(scanned.result.ok);
    EXPECT_EQ(scanned.result.bad_line, bad + 1);
    EXPECT_EQ(scanned.result.bets, bad);
    EXPECT_EQ(scanned.bets.size(), bad);
    EXPECT_FALSE(scanned.result.error.empty());
}

TEST(CommonStoreScan, LastLineWithoutNewlineIsRead) {
    TempDir dir;
    const std::string path = dir.write("bets.csv", "1,A,A,1,2000-01-01,1\n2,B,B,2,2000-01-02,7574");
    const Scanned scanned = scan(path, 1);
    ASSERT_TRUE(scanned.result.ok) << scanned.result.error;
    ASSERT_EQ(scanned.bets.size(), 2u);
    EXPECT_EQ(scanned.bets[1], make_bet(2, "B", "B", "2", "2000-01-02", 7574));
}

TEST(CommonStoreScan, MalformedLastLineWithoutNewlineIsReported) {
    TempDir dir;
    const std::string path = dir.write("bets.csv", "1,A,A,1,2000-01-01,1\n2,B,B");
    const Scanned scanned = scan(path, 1);
    EXPECT_FALSE(scanned.result.ok);
    EXPECT_EQ(scanned.result.bad_line, 2u);
    EXPECT_EQ(scanned.bets.size(), 1u);
}
