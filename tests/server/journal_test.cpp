// Crash recovery from the outside of one process: the journal of format 2
// (its header, each line kind replayed, a v1 journal refused, torn and
// corrupt lines, appends that fail) and Coordinator::open on a store that
// disagrees with its journal, in temp directories.
#include "server/coordinator.hpp"
#include "server/journal.hpp"

#include "coordinator_support.hpp"

#include "../support/test_support.hpp"

#include <gtest/gtest.h>

#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <functional>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace {

using namespace coordinator_support; // the requests, replies and files these tests build
using test_support::exists;
using test_support::file_size;
using test_support::slurp;
using test_support::spit;
using test_support::TempDir;

const std::string kHead = "journal 2\nbase 0\n"; // a journal born beside an empty store

// Opens the journal at `path`; a failure to open fails the test.
Journal open_ok(const std::string& path, RecoveredState& state, std::uint64_t store_length = 0) {
    std::string error;
    Journal journal = Journal::open(path, store_length, state, error);
    EXPECT_TRUE(journal.is_open()) << "Journal::open(" << path << "): " << error;
    EXPECT_EQ(error, "");
    return journal;
}

// Each test's journal file, in a fresh directory.
class JournalTest : public ::testing::Test {
protected:
    // Writes `content` as the journal file and opens it: what a restart replays.
    Journal replay(const std::string& content, RecoveredState& state) {
        spit(path_, content);
        return open_ok(path_, state);
    }
    // Writes `content` as the journal file, which must not open; returns the error.
    std::string refused(const std::string& content) {
        spit(path_, content);
        RecoveredState state;
        std::string error;
        Journal journal = Journal::open(path_, 0, state, error);
        EXPECT_FALSE(journal.is_open()) << "opened: " << content;
        EXPECT_EQ(slurp(path_), content) << "a refused journal must be left as it is";
        return error;
    }

    TempDir dir_;
    const std::string path_ = dir_.file("bets.csv.journal");
};

SourceState source(std::uint32_t agency, const std::string& name, std::uint64_t stored = 0,
                   std::uint64_t digest = 0) {
    return SourceState{agency, name, stored, digest, 0};
}

// ---- a new journal ----------------------------------------------------------------

TEST_F(JournalTest, NewJournalIsCreatedWithTheFormatHeaderAndTheStoreAsBase) {
    ASSERT_FALSE(exists(path_));
    RecoveredState state;
    Journal journal = open_ok(path_, state, 1234);
    EXPECT_FALSE(state.had_journal);
    EXPECT_TRUE(state.sources.empty());
    EXPECT_TRUE(state.done.empty());
    EXPECT_EQ(state.store_length, 1234u) << "the store as found is vouched for";
    EXPECT_EQ(state.last_connection, 0u);
    EXPECT_EQ(state.torn_bytes, 0u);
    EXPECT_EQ(slurp(path_), "journal 2\nbase 1234\n");
    EXPECT_EQ(journal.size(), slurp(path_).size());
    EXPECT_FALSE(exists(path_ + ".new")) << "the journal is written aside and renamed into place";
    EXPECT_EQ(journal.path(), path_);
    EXPECT_EQ(journal_path_for(dir_.file("bets.csv")), path_);
}

TEST_F(JournalTest, NewJournalIsReplayedOnReopen) {
    {
        RecoveredState state;
        open_ok(path_, state, 99).close();
    }
    RecoveredState state;
    Journal journal = open_ok(path_, state, 5); // the store length given only matters for a new journal
    EXPECT_TRUE(state.had_journal);
    EXPECT_EQ(state.store_length, 99u);
    EXPECT_EQ(slurp(path_), "journal 2\nbase 99\n");
}

// ---- each line kind -----------------------------------------------------------------

TEST_F(JournalTest, SourceLinesAddSourcesInIdOrderWithNothingStored) {
    RecoveredState state;
    Journal journal = replay(kHead + "source 0 3 agency-3.csv\nsource 1 65535 env-42-7574\n", state);
    ASSERT_EQ(state.sources.size(), 2u);
    EXPECT_EQ(state.sources[0].agency, 3u);
    EXPECT_EQ(state.sources[0].name, "agency-3.csv");
    EXPECT_EQ(state.sources[0].stored, 0u);
    EXPECT_EQ(state.sources[0].digest, 0u);
    EXPECT_EQ(state.sources[0].opener, 0u);
    EXPECT_EQ(state.sources[1].agency, 65535u);
    EXPECT_EQ(state.sources[1].name, "env-42-7574");
}

TEST_F(JournalTest, OpenLinesSetEachSourcesLatestOpener) {
    RecoveredState state;
    Journal journal = replay(kHead + "source 0 1 a\nsource 1 1 b\nopen 0 4\nopen 1 5\nopen 0 6\n", state);
    ASSERT_EQ(state.sources.size(), 2u);
    EXPECT_EQ(state.sources[0].opener, 6u);
    EXPECT_EQ(state.sources[1].opener, 5u);
}

TEST_F(JournalTest, LastConnectionIsTheHighestJournaledNotTheLast) {
    RecoveredState state;
    Journal journal = replay(kHead + "source 0 1 a\nopen 0 5\nopen 0 12\nopen 0 3\n", state);
    EXPECT_EQ(state.last_connection, 12u);
    EXPECT_EQ(state.sources[0].opener, 3u);
}

TEST_F(JournalTest, BetsLinesSetStoredDigestAndStoreLength) {
    RecoveredState state;
    Journal journal = replay(kHead +
                                 "source 0 1 a\nsource 1 2 b\n"
                                 "bets 0 3 18446744073709551615 120\n"
                                 "bets 1 1 77 160\n"
                                 "bets 0 5 9 240\n",
                             state);
    ASSERT_EQ(state.sources.size(), 2u);
    EXPECT_EQ(state.sources[0].stored, 5u);
    EXPECT_EQ(state.sources[0].digest, 9u);
    EXPECT_EQ(state.sources[1].stored, 1u);
    EXPECT_EQ(state.sources[1].digest, 77u);
    EXPECT_EQ(state.store_length, 240u) << "the last bets line says how long the store is";
}

TEST_F(JournalTest, DoneLinesMarkAgenciesAndLeaveTheStoreLength) {
    RecoveredState state;
    Journal journal = replay("journal 2\nbase 300\ndone 2\ndone 7\ndone 2\n", state);
    EXPECT_EQ(state.done, (std::set<std::uint32_t>{2, 7}));
    EXPECT_EQ(state.store_length, 300u);
    EXPECT_TRUE(state.sources.empty());
}

TEST_F(JournalTest, RecordsAreWrittenInTheDocumentedFormatAndReplayed) {
    {
        RecoveredState state;
        Journal journal = open_ok(path_, state);
        journal.record_source(0, source(1, "a.csv"));
        journal.record_open(0, 7);
        journal.record_bets(0, source(1, "a.csv", 3, 1234567890123ull), 120);
        journal.record_source(1, source(2, "env-1-2"));
        journal.record_open(1, 9);
        journal.record_done(2);
        EXPECT_EQ(slurp(path_), kHead) << "staged lines are not written before write_staged()";
        ASSERT_TRUE(journal.write_staged());
        EXPECT_EQ(journal.size(), slurp(path_).size());
        journal.close();
        EXPECT_FALSE(journal.is_open());
    }
    EXPECT_EQ(slurp(path_), kHead +
                                "source 0 1 a.csv\nopen 0 7\nbets 0 3 1234567890123 120\n"
                                "source 1 2 env-1-2\nopen 1 9\ndone 2\n");

    RecoveredState state;
    Journal journal = open_ok(path_, state);
    EXPECT_TRUE(state.had_journal);
    ASSERT_EQ(state.sources.size(), 2u);
    EXPECT_EQ(state.sources[0].name, "a.csv");
    EXPECT_EQ(state.sources[0].stored, 3u);
    EXPECT_EQ(state.sources[0].digest, 1234567890123ull);
    EXPECT_EQ(state.sources[0].opener, 7u);
    EXPECT_EQ(state.sources[1].agency, 2u);
    EXPECT_EQ(state.done, (std::set<std::uint32_t>{2}));
    EXPECT_EQ(state.store_length, 120u);
    EXPECT_EQ(state.last_connection, 9u);

    // A reopened journal appends after what it replayed.
    journal.record_bets(1, source(2, "env-1-2", 1, 5), 160);
    ASSERT_TRUE(journal.write_staged());
    journal.close();
    RecoveredState again;
    Journal reopened = open_ok(path_, again);
    EXPECT_EQ(again.sources[1].stored, 1u);
    EXPECT_EQ(again.store_length, 160u);
}

TEST_F(JournalTest, LargeJournalIsReplayedAcrossReadChunks) {
    std::string text = kHead + "source 0 4 a\n";
    const std::uint64_t kLines = 20000; // ~500 KB: several 64 KiB read chunks
    for (std::uint64_t i = 1; i <= kLines; ++i)
        text += "bets 0 " + std::to_string(i) + " " + std::to_string(i * 31) + " " + std::to_string(40 * i) + "\n";
    text += "done 4\n";
    RecoveredState state;
    Journal journal = replay(text, state);
    EXPECT_EQ(state.sources.at(0).stored, kLines);
    EXPECT_EQ(state.sources.at(0).digest, kLines * 31);
    EXPECT_EQ(state.store_length, 40 * kLines);
    EXPECT_EQ(state.done, (std::set<std::uint32_t>{4}));
    EXPECT_EQ(state.torn_bytes, 0u);
    EXPECT_EQ(journal.size(), text.size());
}

// ---- refused journals ----------------------------------------------------------------

TEST_F(JournalTest, Version1JournalIsRefusedSayingWhatToDo) {
    const std::string error = refused("base 0\nbatch 1 1 100\ndone 1\n");
    EXPECT_NE(error.find(path_ + ":1:"), std::string::npos) << error;
    EXPECT_NE(error.find("format 1"), std::string::npos) << error;
    EXPECT_NE(error.find("move the store and its journal aside"), std::string::npos) << error;
}

TEST_F(JournalTest, OtherFirstLineIsNotAJournalOfFormat2) {
    for (const std::string first : {"journal 3", "journal 2 ", "Journal 2", "batch 1 1 100", ""}) {
        SCOPED_TRACE("first line '" + first + "'");
        const std::string error = refused(first + "\nbase 0\n");
        EXPECT_NE(error.find(path_ + ":1:"), std::string::npos) << error;
        EXPECT_NE(error.find("format 2"), std::string::npos) << error;
    }
}

TEST_F(JournalTest, EmptyJournalIsRefused) {
    for (const std::string content : {"", "journal 2"}) { // no complete line at all
        SCOPED_TRACE("'" + content + "'");
        const std::string error = refused(content);
        EXPECT_NE(error.find(path_), std::string::npos) << error;
        EXPECT_NE(error.find("empty"), std::string::npos) << error;
    }
}

// A complete line that does not parse is not a crash artefact: refuse, and say where.
TEST_F(JournalTest, CorruptCompleteLineFailsNamingPathAndLine) {
    const std::vector<std::string> corrupt{
        "bogus",        "",                  "journal 2",        "base",            "base 5 6",
        "source 1 1 b", "source 0 1 a",      "source 2 1 a b",   "source 2 1 a/b",  "source 2 4294967296 b",
        "open 2 1",     "open 0",            "open 0 -1",        "open 0 1 2",      "bets 2 1 1 1",
        "bets 0 1 1",   "bets 0 x 1 1",      "bets 0 1 1 1 1",   "bets 0 1 1 -1",   "done",
        "done x",       "done 4294967296",   "done  1",          "done 1\r",        "done 1 2"};
    for (const std::string& bad : corrupt) {
        SCOPED_TRACE("corrupt line: '" + bad + "'");
        const std::string error = refused(kHead + "source 0 1 a\nsource 1 1 b\n" + bad + "\ndone 2\n");
        EXPECT_NE(error.find(path_ + ":5: corrupt journal line"), std::string::npos) << "error: " << error;
    }
}

TEST_F(JournalTest, CorruptLineDeepInALongJournalNamesItsLine) {
    std::string content = kHead + "source 0 3 a\n";
    for (int i = 1; i <= 6000; ++i) content += "bets 0 " + std::to_string(i) + " 1 " + std::to_string(i * 100) + "\n";
    content += "bets 0 6001 oops 1\n";
    const std::string error = refused(content);
    EXPECT_NE(error.find(path_ + ":6004:"), std::string::npos) << "error: " << error;
}

TEST_F(JournalTest, UnreadablePathFails) {
    RecoveredState state;
    std::string error;
    Journal journal = Journal::open(dir_.file("no/such/dir/j"), 0, state, error);
    EXPECT_FALSE(journal.is_open());
    EXPECT_NE(error.find("no/such/dir/j"), std::string::npos) << error;
}

// ---- torn last lines -----------------------------------------------------------------

TEST_F(JournalTest, TornLastLineIsDroppedAndTheFileCutToCompleteLines) {
    const std::string complete = kHead + "source 0 1 a\nbets 0 2 50 80\n";
    const std::string torn = "bets 0 3 7"; // died in the middle of the write
    RecoveredState state;
    Journal journal = replay(complete + torn, state);
    EXPECT_TRUE(state.had_journal);
    EXPECT_EQ(state.torn_bytes, torn.size());
    EXPECT_EQ(state.sources.at(0).stored, 2u) << "the torn line must not count";
    EXPECT_EQ(state.store_length, 80u);
    EXPECT_EQ(slurp(path_), complete) << "file not cut to its complete lines";
    EXPECT_EQ(journal.size(), complete.size());

    // New records go after the complete lines, not glued to the torn one.
    journal.record_bets(0, source(1, "a", 3, 70), 120);
    ASSERT_TRUE(journal.write_staged());
    journal.close();
    EXPECT_EQ(slurp(path_), complete + "bets 0 3 70 120\n");
    RecoveredState again;
    Journal reopened = open_ok(path_, again);
    EXPECT_EQ(again.torn_bytes, 0u);
    EXPECT_EQ(again.sources.at(0).stored, 3u);
    EXPECT_EQ(again.store_length, 120u);
}

TEST_F(JournalTest, TornLineThatWouldParseIsStillDropped) {
    RecoveredState state;
    Journal journal = replay(kHead + "done 1", state); // "done 1" without its '\n'
    EXPECT_EQ(state.torn_bytes, 6u);
    EXPECT_TRUE(state.done.empty()) << "a DONE whose line is torn was never acknowledged";
    EXPECT_EQ(slurp(path_), kHead);
}

TEST_F(JournalTest, TornLineAfterALongJournalIsCutAtTheRightOffset) {
    std::string complete = kHead + "source 0 2 a\n";
    for (int i = 1; i <= 9000; ++i) complete += "bets 0 " + std::to_string(i) + " 3 " + std::to_string(i * 10) + "\n";
    RecoveredState state;
    Journal journal = replay(complete + "bets 0 9001 3 9", state);
    EXPECT_EQ(state.torn_bytes, 15u);
    EXPECT_EQ(state.sources.at(0).stored, 9000u);
    EXPECT_EQ(file_size(path_), static_cast<long long>(complete.size()));
}

// ---- appends that fail, and rolling back ---------------------------------------------

TEST_F(JournalTest, FailedWriteLeavesNoPartialLineAndDropsTheStagedLines) {
    RecoveredState state;
    Journal journal = open_ok(path_, state);
    journal.record_source(0, source(1, "a"));
    ASSERT_TRUE(journal.write_staged());
    const std::string before = slurp(path_);
    {
        FileSizeLimit limit(before.size() + 5); // "bets " fits, the rest of the line does not
        journal.record_bets(0, source(1, "a", 1, 2), 40);
        errno = 0;
        EXPECT_FALSE(journal.write_staged());
        EXPECT_EQ(errno, EFBIG);
        EXPECT_FALSE(journal.has_staged()) << "a failed write drops what it was given";
        journal.record_done(1);
        EXPECT_FALSE(journal.write_staged()) << "nor does a whole short line go in";
    }
    EXPECT_EQ(slurp(path_), before) << "a failed write must leave nothing of its lines";
    EXPECT_EQ(journal.size(), before.size());
    // The next write goes right after the last whole line.
    journal.record_done(1);
    ASSERT_TRUE(journal.write_staged());
    journal.close();
    EXPECT_EQ(slurp(path_), before + "done 1\n");
    RecoveredState again;
    Journal reopened = open_ok(path_, again);
    EXPECT_EQ(again.done, (std::set<std::uint32_t>{1}));
}

TEST_F(JournalTest, StagedLinesGoInWithOneWriteInTheOrderStaged) {
    RecoveredState state;
    Journal journal = open_ok(path_, state);
    journal.record_source(0, source(1, "a"));
    journal.record_open(0, 3);
    journal.record_bets(0, source(1, "a", 1, 2), 40);
    EXPECT_TRUE(journal.has_staged());
    EXPECT_EQ(journal.size(), kHead.size()) << "size() counts what is in the file";
    ASSERT_TRUE(journal.write_staged());
    EXPECT_FALSE(journal.has_staged());
    EXPECT_EQ(slurp(path_), kHead + "source 0 1 a\nopen 0 3\nbets 0 1 2 40\n");
    EXPECT_EQ(journal.size(), slurp(path_).size());
    journal.record_done(4);
    journal.drop_staged();
    ASSERT_TRUE(journal.write_staged()) << "nothing staged is nothing to write";
    EXPECT_EQ(slurp(path_), kHead + "source 0 1 a\nopen 0 3\nbets 0 1 2 40\n") << "dropped lines stay out";
}

TEST_F(JournalTest, TruncateRollsBackLinesAlreadyWritten) {
    RecoveredState state;
    Journal journal = open_ok(path_, state);
    journal.record_source(0, source(1, "a"));
    ASSERT_TRUE(journal.write_staged());
    const std::string before = slurp(path_);
    const std::uint64_t size = journal.size();
    journal.record_open(0, 3);
    journal.record_bets(0, source(1, "a", 1, 2), 40);
    ASSERT_TRUE(journal.write_staged());
    ASSERT_TRUE(journal.truncate(size));
    EXPECT_EQ(journal.size(), size);
    EXPECT_EQ(slurp(path_), before);
    journal.record_done(1);
    ASSERT_TRUE(journal.write_staged());
    EXPECT_EQ(slurp(path_), before + "done 1\n") << "appends continue where the journal was cut";
}

// ---- sync_parent_directory -------------------------------------------------------------

TEST(SyncParentDirectoryTest, SyncsTheDirectoryOfAFile) {
    TempDir dir;
    EXPECT_TRUE(sync_parent_directory(dir.write("bets.csv", "x")));
    EXPECT_TRUE(sync_parent_directory(dir.file("not-created-yet"))) << "only the directory has to exist";
    EXPECT_TRUE(sync_parent_directory("relative-file")) << "the current directory";
    EXPECT_TRUE(sync_parent_directory("/top-level-file")) << "the root directory";
}

TEST(SyncParentDirectoryTest, FailsWhenTheDirectoryIsMissing) {
    TempDir dir;
    errno = 0;
    EXPECT_FALSE(sync_parent_directory(dir.file("missing/bets.csv")));
    EXPECT_EQ(errno, ENOENT);
}

// ---- Coordinator::open against its journal ---------------------------------------------

// A store in a fresh directory, opened by one coordinator after another as by a
// server that restarts over it.
class JournalCoordinator : public ::testing::Test {
protected:
    std::optional<Coordinator> open_coordinator(std::uint32_t agencies) {
        return Coordinator::open({agencies, store_, nullptr}, error_);
    }
    // A run of the server before the one under test: a coordinator opened,
    // driven by `requests` (with its connection number), and closed.
    void previous_run(std::uint32_t agencies, const std::function<void(Coordinator&, std::uint64_t)>& requests) {
        auto coordinator = open_coordinator(agencies);
        ASSERT_TRUE(coordinator) << error_;
        requests(*coordinator, coordinator->new_connection());
        coordinator->close();
    }
    // `bets` stored at position 0 of a new source (agency, name), as a previous run.
    void previous_run_storing(std::uint32_t agencies, std::uint32_t agency, const std::string& name,
                              const std::vector<Bet>& bets) {
        previous_run(agencies, [&](Coordinator& coordinator, std::uint64_t connection) {
            const auto opened = round_trip(coordinator, open_request(agency, name), connection);
            ASSERT_TRUE(opened);
            ASSERT_EQ(describe(*opened), "RESUME 0");
            EXPECT_EQ(answer(coordinator, bets_request(opened->source, agency, 0, bets), connection),
                      "ACK " + std::to_string(bets.size()));
        });
    }
    std::string journal() const { return slurp(journal_path_for(store_)); }

    TempDir dir_;
    const std::string store_ = dir_.file("bets.csv");
    std::string error_;
};

// What an OPEN of (agency, name) answers: "RESUME k" and the digest.
struct Resume {
    std::string reply;
    wire::Digest digest = 0;
    ipc::SourceId source = 0;
};
Resume resume_of(Coordinator& coordinator, std::uint32_t agency, const std::string& name) {
    const auto reply = round_trip(coordinator, open_request(agency, name), coordinator.new_connection());
    if (!reply) return {"<parked>"};
    return {describe(*reply), resume_digest(*reply), reply->source};
}

TEST_F(JournalCoordinator, SourcesAndDoneSurviveAReopen) {
    const std::vector<Bet> a = bets_of(1, 1, 3), b = bets_of(2, 50, 2);
    ASSERT_NO_FATAL_FAILURE(previous_run(2, [&](Coordinator& coordinator, std::uint64_t connection) {
        const auto open_a = round_trip(coordinator, open_request(1, "a.csv"), connection);
        const auto open_b = round_trip(coordinator, open_request(2, "b.csv"), connection);
        ASSERT_TRUE(open_a && open_b);
        EXPECT_EQ(answer(coordinator, bets_request(open_a->source, 1, 0, slice(a, 0, 2)), connection), "ACK 2");
        EXPECT_EQ(answer(coordinator, bets_request(open_b->source, 2, 0, b), connection), "ACK 2");
        EXPECT_EQ(answer(coordinator, bets_request(open_a->source, 1, 2, slice(a, 2, 3)), connection), "ACK 1");
        EXPECT_EQ(answer(coordinator, done_request(2), connection), "ACK 0");
    }));
    const std::string before = slurp(store_);
    EXPECT_EQ(before, store_lines(slice(a, 0, 2)) + store_lines(b) + store_lines(slice(a, 2, 3)));

    auto coordinator = open_coordinator(2);
    ASSERT_TRUE(coordinator) << error_;
    EXPECT_EQ(slurp(store_), before) << "a consistent store must not change on open";
    const Resume resumed_a = resume_of(*coordinator, 1, "a.csv"), resumed_b = resume_of(*coordinator, 2, "b.csv");
    EXPECT_EQ(resumed_a.reply, "RESUME 3");
    EXPECT_EQ(resumed_a.digest, digest_of(a));
    EXPECT_EQ(resumed_a.source, 0u);
    EXPECT_EQ(resumed_b.reply, "RESUME 2");
    EXPECT_EQ(resumed_b.digest, digest_of(b));
    EXPECT_EQ(resume_of(*coordinator, 1, "c.csv").source, 2u) << "a new source after the restored ones";
    // The done set is restored: agency 1's DONE is the last one.
    EXPECT_FALSE(coordinator->draw_running() || coordinator->draw_done());
    EXPECT_EQ(answer(*coordinator, done_request(1), coordinator->new_connection()), "ACK 0");
    EXPECT_TRUE(coordinator->draw_running() || coordinator->draw_done());
    coordinator->close();
}

TEST_F(JournalCoordinator, NewConnectionsAfterAReopenAreNewerThanAnyJournaled) {
    std::uint64_t highest = 0;
    ASSERT_NO_FATAL_FAILURE(previous_run(1, [&](Coordinator& coordinator, std::uint64_t) {
        for (int i = 0; i < 5; ++i) coordinator.new_connection();
        highest = coordinator.new_connection();
        EXPECT_EQ(answer(coordinator, open_request(1, "a.csv"), highest), "RESUME 0");
    }));
    auto coordinator = open_coordinator(1);
    ASSERT_TRUE(coordinator) << error_;
    const std::uint64_t next = coordinator->new_connection();
    EXPECT_GT(next, highest) << "a restarted server would let old and new connections share a number";
    EXPECT_EQ(answer(*coordinator, open_request(1, "a.csv"), next), "RESUME 0");
    const std::vector<Bet> bets = bets_of(1, 1, 1);
    EXPECT_EQ(answer(*coordinator, bets_request(0, 1, 0, bets), highest), "ERROR 8")
        << "the journaled opener is fenced by the newer one";
    EXPECT_EQ(answer(*coordinator, bets_request(0, 1, 0, bets), next), "ACK 1");
    coordinator->close();
}

// A crash between the store write and the journal line: the tail is cut.
TEST_F(JournalCoordinator, StoreLongerThanVouchedIsTruncated) {
    const std::vector<Bet> bets = bets_of(1, 1, 3);
    ASSERT_NO_FATAL_FAILURE(previous_run_storing(1, 1, "a.csv", slice(bets, 0, 2)));
    const std::string vouched = slurp(store_);
    const std::string tail = store_lines(slice(bets, 2, 3)) + "1,Torn,Li"; // a whole unvouched line and half of another
    spit(store_, tail, /*append=*/true);

    test_support::StdoutCapture log;
    auto coordinator = open_coordinator(1);
    ASSERT_TRUE(coordinator) << error_;
    const std::vector<std::string> recover = test_support::lines_with(log.finish(), "action: recover");
    ASSERT_EQ(recover.size(), 1u);
    EXPECT_NE(recover[0].find("dropped_bytes: " + std::to_string(tail.size())), std::string::npos) << recover[0];
    EXPECT_EQ(slurp(store_), vouched) << "the unvouched tail was not dropped";
    // The client resends position 2: stored once, right after the vouched part.
    const std::uint64_t connection = coordinator->new_connection();
    EXPECT_EQ(answer(*coordinator, open_request(1, "a.csv"), connection), "RESUME 2");
    EXPECT_EQ(answer(*coordinator, bets_request(0, 1, 2, slice(bets, 2, 3)), connection), "ACK 1");
    EXPECT_EQ(slurp(store_), store_lines(bets));
    coordinator->close();
}

TEST_F(JournalCoordinator, StoreShorterThanVouchedIsRefused) {
    const std::vector<Bet> bets = bets_of(1, 1, 2);
    ASSERT_NO_FATAL_FAILURE(previous_run_storing(1, 1, "a.csv", bets));
    const std::string journal_before = journal();
    const std::string kept = store_lines(slice(bets, 0, 1));
    spit(store_, kept); // acknowledged bets lost
    auto coordinator = open_coordinator(1);
    EXPECT_FALSE(coordinator.has_value()) << "opened a store that lost acknowledged bets";
    EXPECT_NE(error_.find(store_), std::string::npos) << "error should name the store: " << error_;
    EXPECT_NE(error_.find("shorter"), std::string::npos) << error_;
    EXPECT_EQ(slurp(store_), kept) << "the store must be left as it is";
    EXPECT_EQ(journal(), journal_before) << "the journal must be left as it is";
}

TEST_F(JournalCoordinator, CorruptJournalRefusesToOpen) {
    const std::string line = store_lines(bets_of(1, 1, 1));
    spit(store_, line);
    spit(journal_path_for(store_), "journal 2\nbase " + std::to_string(line.size()) + "\nnot a line\n");
    auto coordinator = open_coordinator(1);
    EXPECT_FALSE(coordinator.has_value());
    EXPECT_NE(error_.find(journal_path_for(store_) + ":3"), std::string::npos) << error_;
    EXPECT_EQ(slurp(store_), line);
}

TEST_F(JournalCoordinator, Version1JournalRefusesToOpenAndTouchesNothing) {
    const std::string line = store_lines(bets_of(1, 1, 1));
    const std::string v1 = "base 0\nbatch 1 1 " + std::to_string(line.size()) + "\n";
    spit(store_, line);
    spit(journal_path_for(store_), v1);
    auto coordinator = open_coordinator(1);
    EXPECT_FALSE(coordinator.has_value());
    EXPECT_NE(error_.find(journal_path_for(store_) + ":1:"), std::string::npos) << error_;
    EXPECT_NE(error_.find("format 1"), std::string::npos) << error_;
    EXPECT_EQ(slurp(store_), line);
    EXPECT_EQ(journal(), v1);
}

TEST_F(JournalCoordinator, TornJournalLineAndUnvouchedStoreTailTogether) {
    const std::vector<Bet> bets = bets_of(1, 1, 2);
    ASSERT_NO_FATAL_FAILURE(previous_run_storing(1, 1, "a.csv", slice(bets, 0, 1)));
    const std::string vouched = slurp(store_), journal_before = journal();
    spit(store_, store_lines(slice(bets, 1, 2)), true); // position 1's bet written...
    spit(journal_path_for(store_), "bets 0 2 ", true);  // ...its journal line torn
    auto coordinator = open_coordinator(1);
    ASSERT_TRUE(coordinator) << error_;
    EXPECT_EQ(slurp(store_), vouched);
    EXPECT_EQ(journal(), journal_before);
    const Resume resumed = resume_of(*coordinator, 1, "a.csv");
    EXPECT_EQ(resumed.reply, "RESUME 1") << "position 1 must be new again";
    EXPECT_EQ(resumed.digest, digest_of(slice(bets, 0, 1)));
    coordinator->close();
}

// No journal (a hand-made store): the store is taken as it is, once.
TEST_F(JournalCoordinator, StoreWithoutJournalIsTakenAsItIsAndSurvivesASecondOpen) {
    const std::string lines = store_lines(bets_of(1, 1, 2));
    spit(store_, lines);
    ASSERT_NO_FATAL_FAILURE(previous_run(2, [](Coordinator&, std::uint64_t) {}));
    EXPECT_EQ(journal(), "journal 2\nbase " + std::to_string(lines.size()) + "\n");
    auto coordinator = open_coordinator(2);
    ASSERT_TRUE(coordinator) << error_;
    EXPECT_EQ(slurp(store_), lines) << "the second open dropped the bets the first one had kept";
    coordinator->close();
}

// Every agency was done before the crash: the draw starts as the coordinator opens.
TEST_F(JournalCoordinator, AllDoneStartsTheDrawAtOpen) {
    const std::vector<Bet> one = {bet(1, 42, kWinningNumber), bet(1, 2, 1), bet(1, 23456789, kWinningNumber)};
    const std::vector<Bet> two = {bet(2, 3, 1), bet(2, 34567890, kWinningNumber)};
    ASSERT_NO_FATAL_FAILURE(previous_run(2, [&](Coordinator& coordinator, std::uint64_t connection) {
        const auto a = round_trip(coordinator, open_request(1, "a.csv"), connection);
        const auto b = round_trip(coordinator, open_request(2, "b.csv"), connection);
        ASSERT_TRUE(a && b);
        EXPECT_EQ(answer(coordinator, bets_request(a->source, 1, 0, one), connection), "ACK 3");
        EXPECT_EQ(answer(coordinator, bets_request(b->source, 2, 0, two), connection), "ACK 2");
        EXPECT_EQ(answer(coordinator, done_request(1), connection), "ACK 0");
        EXPECT_EQ(answer(coordinator, done_request(2), connection), "ACK 0");
    }));
    const std::string before = slurp(store_);
    auto coordinator = open_coordinator(2);
    ASSERT_TRUE(coordinator) << error_;
    EXPECT_TRUE(coordinator->draw_running()) << "every agency was done: the draw must start at open";
    finish_draw(*coordinator);
    ASSERT_TRUE(coordinator->draw_done());
    EXPECT_EQ(documents_of(coordinator->winners_reply(1)), (std::vector<std::string>{"00000042", "23456789"}));
    const std::uint64_t connection = coordinator->new_connection();
    const auto reply = round_trip(*coordinator, winners_request(2), connection);
    ASSERT_TRUE(reply) << "WINNERS must be answered at once after a recovered draw";
    EXPECT_EQ(documents_of(*reply), std::vector<std::string>{"34567890"});
    // A re-run of an agency stores nothing.
    EXPECT_EQ(answer(*coordinator, open_request(1, "a.csv"), connection), "RESUME 3");
    EXPECT_EQ(answer(*coordinator, bets_request(0, 1, 0, one), connection), "ACK 3");
    EXPECT_EQ(answer(*coordinator, done_request(1), connection), "ACK 0");
    EXPECT_EQ(slurp(store_), before);
    coordinator->close();
}

TEST_F(JournalCoordinator, SomeAgenciesDoneDoesNotDrawAtOpen) {
    ASSERT_NO_FATAL_FAILURE(previous_run(3, [](Coordinator& coordinator, std::uint64_t connection) {
        EXPECT_EQ(answer(coordinator, done_request(1), connection), "ACK 0");
        EXPECT_EQ(answer(coordinator, done_request(3), connection), "ACK 0");
    }));
    auto coordinator = open_coordinator(3);
    ASSERT_TRUE(coordinator) << error_;
    EXPECT_FALSE(coordinator->draw_running() || coordinator->draw_done());
    EXPECT_EQ(answer(*coordinator, done_request(2), coordinator->new_connection()), "ACK 0");
    EXPECT_TRUE(coordinator->draw_running() || coordinator->draw_done());
    coordinator->close();
}

// The configured number of agencies grew after the crash: not everyone is done.
TEST_F(JournalCoordinator, DoneSetFromAFormerConfigurationDoesNotForceADraw) {
    spit(journal_path_for(store_), "journal 2\nbase 0\ndone 1\ndone 2\n");
    auto coordinator = open_coordinator(3);
    ASSERT_TRUE(coordinator) << error_;
    EXPECT_FALSE(coordinator->draw_running() || coordinator->draw_done());
    coordinator->close();
}

} // namespace
