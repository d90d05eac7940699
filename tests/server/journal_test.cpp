// Crash recovery from the outside of one process: the journal's replay
// (restored state, torn last line, corrupt lines) and Coordinator::open on a
// store that disagrees with its journal, in temp directories.
#include "server/coordinator.hpp"
#include "server/journal.hpp"

#include <gtest/gtest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace {

class TempDir {
public:
    TempDir() {
        char pattern[] = "/tmp/journal_test.XXXXXX";
        const char* made = ::mkdtemp(pattern);
        if (made == nullptr) std::abort();
        path_ = made;
    }
    ~TempDir() {
        std::error_code ignored;
        std::filesystem::remove_all(path_, ignored);
    }
    std::string file(const std::string& name) const { return path_ + "/" + name; }

private:
    std::string path_;
};

std::string slurp(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

void spit(const std::string& path, const std::string& content, bool append = false) {
    std::ofstream out(path, std::ios::binary | (append ? std::ios::app : std::ios::trunc));
    out << content;
    ASSERT_TRUE(out.good()) << "cannot write " << path;
}

long long file_size(const std::string& path) {
    struct stat info {};
    return ::stat(path.c_str(), &info) == 0 ? static_cast<long long>(info.st_size) : -1;
}

bool exists(const std::string& path) { return ::access(path.c_str(), F_OK) == 0; }

// Opens the journal at `path`; a failure to open fails the test.
Journal open_ok(const std::string& path, RecoveredState& state) {
    std::string error;
    Journal journal = Journal::open(path, 0, state, error);
    EXPECT_TRUE(journal.is_open()) << "Journal::open(" << path << "): " << error;
    EXPECT_EQ(error, "");
    return journal;
}

// ---- coordinator helpers (requests as the handlers would send them) ----------

ipc::Request bets(std::uint32_t agency, std::uint32_t batch, std::uint16_t count, std::string lines) {
    return ipc::Request{wire::RequestHeader{wire::RequestType::bets, agency, batch, count}, std::move(lines)};
}
ipc::Request done(std::uint32_t agency) {
    return ipc::Request{wire::RequestHeader{wire::RequestType::done, agency, 0, 0}, {}};
}
ipc::Request winners(std::uint32_t agency) {
    return ipc::Request{wire::RequestHeader{wire::RequestType::winners, agency, 0, 0}, {}};
}

// "ACK 2", "ERROR 3", "WINNERS 1": readable in failure messages.
std::string describe(const ipc::Reply& reply) {
    if (reply.frame.size() < wire::kReplyHeaderSize) return "<short reply>";
    const auto decoded = wire::decode_reply_header(reply.frame.data());
    if (!decoded.ok()) return "<bad reply>";
    const char* names[] = {"?", "ACK", "ERROR", "WINNERS", "ECHO"};
    const auto type = static_cast<unsigned>(decoded.value().type);
    return std::string(type <= 4 ? names[type] : "?") + " " + std::to_string(decoded.value().value);
}

std::string answer(Coordinator& coordinator, const ipc::Request& request) {
    const auto reply = coordinator.handle(request);
    if (!reply) return "<parked>";
    return describe(*reply);
}

std::vector<std::string> documents_of(const ipc::Reply& reply) {
    if (reply.frame.size() < wire::kReplyHeaderSize) return {"<short reply>"};
    const auto header = wire::decode_reply_header(reply.frame.data());
    if (!header.ok() || header.value().type != wire::ReplyType::winners) return {"<not WINNERS: " + describe(reply) + ">"};
    if (reply.frame.size() != wire::kReplyHeaderSize + header.value().value * 8u) return {"<bad size>"};
    const auto documents = wire::decode_documents(reply.frame.data() + wire::kReplyHeaderSize, header.value().value);
    return documents.ok() ? documents.value() : std::vector<std::string>{"<bad documents>"};
}

// Store lines written by hand (agency,first,last,document,birthdate,number).
const std::string kA1Win = "1,Ana,Gómez,00000042,1990-01-31,7574\n";
const std::string kA1Lose = "1,Luis,Paz,12345678,1985-12-01,1234\n";
const std::string kA1Win2 = "1,Eva,Ruiz,23456789,1970-07-07,7574\n";
const std::string kA2Win = "2,Marta,Sosa,34567890,2000-02-29,7574\n";
const std::string kA2Lose = "2,Juan,Díaz,45678901,1999-12-31,9999\n";

std::optional<Coordinator> open_coordinator(std::uint32_t agencies, const std::string& store, std::string& error) {
    return Coordinator::open({agencies, store, false}, error);
}

} // namespace

// ---- Journal ------------------------------------------------------------------

TEST(JournalTest, NewJournalHasNoHistoryAndIsCreatedEmpty) {
    TempDir dir;
    const std::string path = dir.file("bets.csv.journal");
    ASSERT_FALSE(exists(path));
    RecoveredState state;
    Journal journal = open_ok(path, state);
    EXPECT_FALSE(state.had_journal);
    EXPECT_TRUE(state.last_batch.empty());
    EXPECT_TRUE(state.done.empty());
    EXPECT_EQ(state.store_length, 0u);
    EXPECT_EQ(state.batches, 0u);
    EXPECT_EQ(state.torn_bytes, 0u);
    EXPECT_TRUE(exists(path));
    EXPECT_EQ(slurp(path), "base 0\n") << "a new journal is born with its base line";
    EXPECT_EQ(journal.path(), path);
    EXPECT_EQ(journal_path_for(dir.file("bets.csv")), path);
}

TEST(JournalTest, AnEmptyExistingJournalIsAJournal) {
    TempDir dir;
    const std::string path = dir.file("j");
    spit(path, "");
    RecoveredState state;
    Journal journal = open_ok(path, state);
    EXPECT_TRUE(state.had_journal);
    EXPECT_EQ(state.batches, 0u);
    EXPECT_EQ(state.store_length, 0u);
}

TEST(JournalTest, RecordsAreReplayedOnReopen) {
    TempDir dir;
    const std::string path = dir.file("j");
    {
        RecoveredState state;
        Journal journal = open_ok(path, state);
        ASSERT_TRUE(journal.record_batch(1, 1, 100));
        ASSERT_TRUE(journal.record_batch(2, 1, 250));
        ASSERT_TRUE(journal.record_batch(1, 2, 400));
        ASSERT_TRUE(journal.record_done(2));
        ASSERT_TRUE(journal.record_batch(3, 1, 512));
        ASSERT_TRUE(journal.record_done(3));
        ASSERT_TRUE(journal.sync());
        journal.close();
        EXPECT_FALSE(journal.is_open());
    }
    // The documented text format (README: one text line per decision).
    EXPECT_EQ(slurp(path), "base 0\nbatch 1 1 100\nbatch 2 1 250\nbatch 1 2 400\ndone 2\nbatch 3 1 512\ndone 3\n");

    RecoveredState state;
    Journal journal = open_ok(path, state);
    EXPECT_TRUE(state.had_journal);
    const std::map<std::uint32_t, std::uint32_t> expected_batches{{1, 2}, {2, 1}, {3, 1}};
    EXPECT_EQ(state.last_batch, expected_batches);
    EXPECT_EQ(state.done, (std::set<std::uint32_t>{2, 3}));
    EXPECT_EQ(state.store_length, 512u) << "the last batch line's length";
    EXPECT_EQ(state.batches, 4u);
    EXPECT_EQ(state.torn_bytes, 0u);
    EXPECT_EQ(file_size(path), static_cast<long long>(slurp(path).size()));

    // A reopened journal appends after what it replayed, and a later reopen sees both.
    ASSERT_TRUE(journal.record_batch(1, 3, 600));
    ASSERT_TRUE(journal.record_done(1));
    journal.close();
    RecoveredState again;
    Journal reopened = open_ok(path, again);
    EXPECT_EQ(again.last_batch[1], 3u);
    EXPECT_EQ(again.done, (std::set<std::uint32_t>{1, 2, 3}));
    EXPECT_EQ(again.store_length, 600u);
    EXPECT_EQ(again.batches, 5u);
}

TEST(JournalTest, StoreLengthIsTheLastBatchLineEvenIfSmallerAndDoneLinesDoNotChangeIt) {
    TempDir dir;
    const std::string path = dir.file("j");
    spit(path, "batch 1 1 900\nbatch 2 1 300\ndone 1\n");
    RecoveredState state;
    Journal journal = open_ok(path, state);
    EXPECT_EQ(state.store_length, 300u);
    EXPECT_EQ(state.done, (std::set<std::uint32_t>{1}));
}

TEST(JournalTest, LargeJournalIsReplayedAcrossReadChunks) {
    TempDir dir;
    const std::string path = dir.file("j");
    std::string text;
    const std::uint32_t kBatches = 20000; // ~400 KB: several 64 KiB read chunks
    for (std::uint32_t batch = 1; batch <= kBatches; ++batch)
        text += "batch " + std::to_string(batch % 7 + 1) + " " + std::to_string(batch) + " " +
                std::to_string(1000ull * batch) + "\n";
    text += "done 4\n";
    spit(path, text);
    RecoveredState state;
    Journal journal = open_ok(path, state);
    EXPECT_EQ(state.batches, kBatches);
    EXPECT_EQ(state.store_length, 1000ull * kBatches);
    EXPECT_EQ(state.last_batch.size(), 7u);
    EXPECT_EQ(state.last_batch[kBatches % 7 + 1], kBatches);
    EXPECT_EQ(state.done, (std::set<std::uint32_t>{4}));
    EXPECT_EQ(state.torn_bytes, 0u);
    EXPECT_EQ(file_size(path), static_cast<long long>(text.size()));
}

TEST(JournalTest, TornLastLineIsDroppedAndTheFileCutToCompleteLines) {
    TempDir dir;
    const std::string path = dir.file("j");
    const std::string complete = "batch 1 1 100\nbatch 1 2 200\n";
    const std::string torn = "batch 1 3 30"; // died in the middle of the write
    spit(path, complete + torn);
    RecoveredState state;
    Journal journal = open_ok(path, state);
    EXPECT_TRUE(state.had_journal);
    EXPECT_EQ(state.torn_bytes, torn.size());
    EXPECT_EQ(state.last_batch[1], 2u) << "the torn line must not count";
    EXPECT_EQ(state.store_length, 200u);
    EXPECT_EQ(state.batches, 2u);
    EXPECT_EQ(file_size(path), static_cast<long long>(complete.size())) << "file not cut to its complete lines";
    EXPECT_EQ(slurp(path), complete);

    // New records go after the complete lines, not glued to the torn one.
    ASSERT_TRUE(journal.record_batch(1, 3, 300));
    journal.close();
    EXPECT_EQ(slurp(path), complete + "batch 1 3 300\n");
    RecoveredState again;
    Journal reopened = open_ok(path, again);
    EXPECT_EQ(again.torn_bytes, 0u);
    EXPECT_EQ(again.last_batch[1], 3u);
    EXPECT_EQ(again.store_length, 300u);
}

TEST(JournalTest, TornLineThatWouldParseIsStillDropped) {
    TempDir dir;
    const std::string path = dir.file("j");
    spit(path, "batch 1 1 100\ndone 1"); // "done 1" without its '\n'
    RecoveredState state;
    Journal journal = open_ok(path, state);
    EXPECT_EQ(state.torn_bytes, 6u);
    EXPECT_TRUE(state.done.empty()) << "a DONE whose line is torn was never acknowledged";
    EXPECT_EQ(file_size(path), 14);
}

TEST(JournalTest, OnlyATornLineIsCutToEmpty) {
    TempDir dir;
    const std::string path = dir.file("j");
    spit(path, "batc");
    RecoveredState state;
    Journal journal = open_ok(path, state);
    EXPECT_TRUE(state.had_journal);
    EXPECT_EQ(state.torn_bytes, 4u);
    EXPECT_EQ(state.batches, 0u);
    EXPECT_EQ(file_size(path), 0);
}

TEST(JournalTest, TornLineAfterALongJournalIsCutAtTheRightOffset) {
    TempDir dir;
    const std::string path = dir.file("j");
    std::string complete;
    for (int batch = 1; batch <= 9000; ++batch)
        complete += "batch 2 " + std::to_string(batch) + " " + std::to_string(batch * 10) + "\n";
    spit(path, complete + "batch 2 9001 9");
    RecoveredState state;
    Journal journal = open_ok(path, state);
    EXPECT_EQ(state.torn_bytes, 14u);
    EXPECT_EQ(state.last_batch[2], 9000u);
    EXPECT_EQ(file_size(path), static_cast<long long>(complete.size()));
}

// A complete line that does not parse is not a crash artefact: refuse, and say where.
TEST(JournalTest, CorruptCompleteLineFailsNamingPathAndLine) {
    const std::vector<std::string> corrupt{"bogus", "batch 1 -1 10", "done -2", "base 5 6",        "batch 1 x 10",   "batch 1 1",       "batch 1 1 10 extra",
                                           "done",         "done 1 2",       "batch",           "",
                                           "done x",       "batch 1 99999999999 10"};
    for (const std::string& bad : corrupt) {
        SCOPED_TRACE("corrupt line: '" + bad + "'");
        TempDir dir;
        const std::string path = dir.file("bets.csv.journal");
        const std::string content = "batch 1 1 100\ndone 2\n" + bad + "\nbatch 1 2 200\n";
        spit(path, content);
        RecoveredState state;
        std::string error;
        Journal journal = Journal::open(path, 0, state, error);
        EXPECT_FALSE(journal.is_open());
        EXPECT_NE(error.find(path + ":3"), std::string::npos) << "error: " << error;
        EXPECT_EQ(slurp(path), content) << "a corrupt journal must be left as it is";
    }
}

TEST(JournalTest, CorruptLineDeepInALongJournalNamesItsLine) {
    TempDir dir;
    const std::string path = dir.file("j");
    std::string content;
    for (int batch = 1; batch <= 6000; ++batch)
        content += "batch 3 " + std::to_string(batch) + " " + std::to_string(batch * 100) + "\n";
    content += "batch 3 6001 oops\n";
    spit(path, content);
    RecoveredState state;
    std::string error;
    Journal journal = Journal::open(path, 0, state, error);
    EXPECT_FALSE(journal.is_open());
    EXPECT_NE(error.find(path + ":6001"), std::string::npos) << "error: " << error;
}

TEST(JournalTest, UnreadablePathFails) {
    TempDir dir;
    RecoveredState state;
    std::string error;
    Journal journal = Journal::open(dir.file("no/such/dir/j"), 0, state, error);
    EXPECT_FALSE(journal.is_open());
    EXPECT_NE(error, "");
}

// ---- Coordinator::open against its journal -------------------------------------

TEST(JournalCoordinator, StateSurvivesAReopen) {
    TempDir dir;
    const std::string store = dir.file("bets.csv");
    std::string error;
    {
        auto coordinator = open_coordinator(2, store, error);
        ASSERT_TRUE(coordinator) << error;
        EXPECT_EQ(answer(*coordinator, bets(1, 1, 1, kA1Win)), "ACK 1");
        EXPECT_EQ(answer(*coordinator, bets(1, 2, 1, kA1Lose)), "ACK 1");
        EXPECT_EQ(answer(*coordinator, bets(2, 1, 1, kA2Lose)), "ACK 1");
        EXPECT_EQ(answer(*coordinator, done(2)), "ACK 0");
        coordinator->close();
    }
    const std::string before = slurp(store);
    EXPECT_EQ(before, kA1Win + kA1Lose + kA2Lose);
    EXPECT_EQ(slurp(journal_path_for(store)), "base 0\nbatch 1 1 " + std::to_string(kA1Win.size()) + "\nbatch 1 2 " +
                                                  std::to_string((kA1Win + kA1Lose).size()) + "\nbatch 2 1 " +
                                                  std::to_string(before.size()) + "\ndone 2\n");

    auto coordinator = open_coordinator(2, store, error);
    ASSERT_TRUE(coordinator) << error;
    EXPECT_FALSE(coordinator->draw_done());
    EXPECT_EQ(slurp(store), before) << "a consistent store must not change on open";
    // Batch numbers are restored: resends are duplicates, the next one is stored, a gap is refused.
    const auto resent = coordinator->handle(bets(1, 2, 1, kA1Lose));
    ASSERT_TRUE(resent);
    EXPECT_EQ(resent->outcome, ipc::Outcome::duplicate);
    EXPECT_EQ(answer(*coordinator, bets(1, 1, 1, kA1Win)), "ACK 1");
    EXPECT_EQ(answer(*coordinator, bets(1, 4, 1, kA1Win2)), "ERROR 4");
    EXPECT_EQ(slurp(store), before) << "duplicates and gaps store nothing";
    // The done set is restored: agency 2 may not add bets any more.
    EXPECT_EQ(answer(*coordinator, bets(2, 2, 1, kA2Win)), "ERROR 5");
    EXPECT_EQ(answer(*coordinator, bets(1, 3, 1, kA1Win2)), "ACK 1");
    EXPECT_EQ(answer(*coordinator, winners(1)), "<parked>");
    EXPECT_EQ(answer(*coordinator, done(2)), "ACK 0") << "DONE is idempotent across restarts";
    EXPECT_FALSE(coordinator->draw_done());
    EXPECT_EQ(answer(*coordinator, done(1)), "ACK 0");
    EXPECT_TRUE(coordinator->draw_done());
    EXPECT_EQ(documents_of(coordinator->winners_reply(1)), (std::vector<std::string>{"00000042", "23456789"}));
    EXPECT_EQ(documents_of(coordinator->winners_reply(2)), std::vector<std::string>{});
    coordinator->close();
}

// A crash between the store write and the journal line: the tail is cut.
TEST(JournalCoordinator, StoreLongerThanVouchedIsTruncated) {
    TempDir dir;
    const std::string store = dir.file("bets.csv");
    std::string error;
    {
        auto coordinator = open_coordinator(1, store, error);
        ASSERT_TRUE(coordinator) << error;
        EXPECT_EQ(answer(*coordinator, bets(1, 1, 2, kA1Lose + kA1Win)), "ACK 2");
        coordinator->close();
    }
    const std::string vouched = slurp(store);
    const std::string tail = kA1Win2 + "1,Torn,Li"; // a whole unvouched line and half of another
    spit(store, tail, /*append=*/true);
    ASSERT_EQ(file_size(store), static_cast<long long>(vouched.size() + tail.size()));

    auto coordinator = open_coordinator(1, store, error);
    ASSERT_TRUE(coordinator) << error;
    EXPECT_EQ(file_size(store), static_cast<long long>(vouched.size())) << "the unvouched tail was not dropped";
    EXPECT_EQ(slurp(store), vouched);
    // The client resends the unacknowledged batch 2: stored once, right after the vouched part.
    EXPECT_EQ(answer(*coordinator, bets(1, 2, 1, kA1Win2)), "ACK 1");
    EXPECT_EQ(slurp(store), vouched + kA1Win2);
    EXPECT_EQ(answer(*coordinator, done(1)), "ACK 0");
    ASSERT_TRUE(coordinator->draw_done());
    EXPECT_EQ(documents_of(coordinator->winners_reply(1)), (std::vector<std::string>{"00000042", "23456789"}));
    coordinator->close();
}

TEST(JournalCoordinator, StoreShorterThanVouchedIsRefused) {
    TempDir dir;
    const std::string store = dir.file("bets.csv");
    std::string error;
    {
        auto coordinator = open_coordinator(1, store, error);
        ASSERT_TRUE(coordinator) << error;
        EXPECT_EQ(answer(*coordinator, bets(1, 1, 2, kA1Lose + kA1Win)), "ACK 2");
        coordinator->close();
    }
    const std::string full = slurp(store);
    const std::string journal_before = slurp(journal_path_for(store));
    ASSERT_EQ(::truncate(store.c_str(), static_cast<off_t>(kA1Lose.size())), 0); // acknowledged bets lost
    error.clear();
    auto coordinator = open_coordinator(1, store, error);
    EXPECT_FALSE(coordinator.has_value()) << "opened a store that lost acknowledged bets";
    EXPECT_NE(error, "");
    EXPECT_NE(error.find(store), std::string::npos) << "error should name the store: " << error;
    EXPECT_EQ(slurp(store), kA1Lose) << "the store must be left as it is";
    EXPECT_EQ(slurp(journal_path_for(store)), journal_before) << "the journal must be left as it is";
}

TEST(JournalCoordinator, CorruptJournalRefusesToOpen) {
    TempDir dir;
    const std::string store = dir.file("bets.csv");
    spit(store, kA1Win);
    spit(journal_path_for(store), "batch 1 1 " + std::to_string(kA1Win.size()) + "\nnot a line\n");
    std::string error;
    auto coordinator = open_coordinator(1, store, error);
    EXPECT_FALSE(coordinator.has_value());
    EXPECT_NE(error.find(journal_path_for(store) + ":2"), std::string::npos) << error;
    EXPECT_EQ(slurp(store), kA1Win);
}

TEST(JournalCoordinator, TornJournalLineAndUnvouchedStoreTailTogether) {
    TempDir dir;
    const std::string store = dir.file("bets.csv");
    std::string error;
    {
        auto coordinator = open_coordinator(1, store, error);
        ASSERT_TRUE(coordinator) << error;
        EXPECT_EQ(answer(*coordinator, bets(1, 1, 1, kA1Lose)), "ACK 1");
        coordinator->close();
    }
    const std::string vouched = slurp(store);
    const std::string journal = slurp(journal_path_for(store));
    spit(store, kA1Win, true);                                   // batch 2's bets written...
    spit(journal_path_for(store), "batch 1 2 ", true);           // ...its journal line torn
    auto coordinator = open_coordinator(1, store, error);
    ASSERT_TRUE(coordinator) << error;
    EXPECT_EQ(slurp(store), vouched);
    EXPECT_EQ(slurp(journal_path_for(store)), journal);
    EXPECT_EQ(answer(*coordinator, bets(1, 2, 1, kA1Win)), "ACK 1") << "batch 2 must be new again";
    EXPECT_EQ(slurp(store), vouched + kA1Win);
    coordinator->close();
}

// No journal (an older or hand-made store): the store is taken as it is.
TEST(JournalCoordinator, StoreWithoutJournalIsTakenAsItIs) {
    TempDir dir;
    const std::string store = dir.file("bets.csv");
    spit(store, kA1Win + kA2Lose);
    std::string error;
    auto coordinator = open_coordinator(2, store, error);
    ASSERT_TRUE(coordinator) << error;
    EXPECT_EQ(slurp(store), kA1Win + kA2Lose);
    EXPECT_TRUE(exists(journal_path_for(store)));
    coordinator->close();
}

// The store taken as it is must stay as it is when the server restarts
// before anything new was stored (its journal is still empty then).
TEST(JournalCoordinator, StoreWithoutJournalSurvivesASecondOpen) {
    TempDir dir;
    const std::string store = dir.file("bets.csv");
    spit(store, kA1Win + kA2Lose);
    std::string error;
    {
        auto coordinator = open_coordinator(2, store, error);
        ASSERT_TRUE(coordinator) << error;
        coordinator->close();
    }
    auto coordinator = open_coordinator(2, store, error);
    ASSERT_TRUE(coordinator) << error;
    EXPECT_EQ(slurp(store), kA1Win + kA2Lose) << "the second open dropped the bets the first one had kept";
    coordinator->close();
}

// Every agency was done before the crash: the draw runs as the coordinator opens.
TEST(JournalCoordinator, AllDoneRunsTheDrawAtOpen) {
    TempDir dir;
    const std::string store = dir.file("bets.csv");
    std::string error;
    {
        auto coordinator = open_coordinator(2, store, error);
        ASSERT_TRUE(coordinator) << error;
        EXPECT_EQ(answer(*coordinator, bets(1, 1, 3, kA1Win + kA1Lose + kA1Win2)), "ACK 3");
        EXPECT_EQ(answer(*coordinator, bets(2, 1, 2, kA2Lose + kA2Win)), "ACK 2");
        EXPECT_EQ(answer(*coordinator, done(1)), "ACK 0");
        EXPECT_EQ(answer(*coordinator, done(2)), "ACK 0");
        EXPECT_TRUE(coordinator->draw_done());
        coordinator->close();
    }
    const std::string before = slurp(store);
    auto coordinator = open_coordinator(2, store, error);
    ASSERT_TRUE(coordinator) << error;
    EXPECT_TRUE(coordinator->draw_done()) << "every agency was done: the draw must run at open";
    EXPECT_EQ(documents_of(coordinator->winners_reply(1)), (std::vector<std::string>{"00000042", "23456789"}));
    EXPECT_EQ(documents_of(coordinator->winners_reply(2)), std::vector<std::string>{"34567890"});
    const auto reply = coordinator->handle(winners(2));
    ASSERT_TRUE(reply) << "WINNERS must be answered at once after a recovered draw";
    EXPECT_EQ(documents_of(*reply), std::vector<std::string>{"34567890"});
    // A rerun of an agency stores nothing.
    EXPECT_EQ(answer(*coordinator, bets(1, 1, 3, kA1Win + kA1Lose + kA1Win2)), "ACK 3");
    EXPECT_EQ(answer(*coordinator, done(1)), "ACK 0");
    EXPECT_EQ(slurp(store), before);
    coordinator->close();
}

TEST(JournalCoordinator, SomeAgenciesDoneDoesNotDrawAtOpen) {
    TempDir dir;
    const std::string store = dir.file("bets.csv");
    std::string error;
    {
        auto coordinator = open_coordinator(3, store, error);
        ASSERT_TRUE(coordinator) << error;
        EXPECT_EQ(answer(*coordinator, done(1)), "ACK 0");
        EXPECT_EQ(answer(*coordinator, done(3)), "ACK 0");
        coordinator->close();
    }
    auto coordinator = open_coordinator(3, store, error);
    ASSERT_TRUE(coordinator) << error;
    EXPECT_FALSE(coordinator->draw_done());
    EXPECT_EQ(answer(*coordinator, done(2)), "ACK 0");
    EXPECT_TRUE(coordinator->draw_done());
    coordinator->close();
}

// The configured number of agencies grew after the crash: not everyone is done.
TEST(JournalCoordinator, DoneSetFromAFormerConfigurationDoesNotForceADraw) {
    TempDir dir;
    const std::string store = dir.file("bets.csv");
    spit(journal_path_for(store), "done 1\ndone 2\n");
    std::string error;
    auto coordinator = open_coordinator(3, store, error);
    ASSERT_TRUE(coordinator) << error;
    EXPECT_FALSE(coordinator->draw_done());
    coordinator->close();
}
