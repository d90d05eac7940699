// The coordinator's memory across restarts: an append-only text file next to
// the bet store (`<store>.journal`) with one line per decision, written after
// the bets themselves and before the reply:
//   journal 2                                      first line: the format
//   base <store bytes>                             the store as found
//   source <id> <agency> <name>                    a new source, ids 0, 1, 2...
//   open <id> <connection>                         a connection opened the source
//   bets <id> <stored> <digest> <store bytes>      the source now holds <stored>
//                                                  bets with <digest>; the store
//                                                  is <store bytes> long
//   done <agency>                                  the agency said DONE
// A journal is born whole (written aside, then renamed into place) with its
// first two lines, so a store found without one - new, or older than
// journals - is vouched for as it is, exactly once.
// On start the journal is replayed: it restores every source and the done
// set, and vouches for a store length. Whatever the store holds past that
// length was written by a coordinator that died before journaling it, was
// never acknowledged, and is cut off; the client sends it again.
#pragma once

#include "common/fd.hpp"

#include <cstdint>
#include <set>
#include <string>
#include <vector>

struct SourceState {
    std::uint32_t agency = 0;
    std::string name;
    std::uint64_t stored = 0;     // bets of this source in the store: positions [0, stored)
    std::uint64_t digest = 0;     // wire::Digest of those bets
    std::uint64_t opener = 0;     // the connection that opened it last (0: none yet)
};

struct RecoveredState {
    bool had_journal = false;          // false: a new (or legacy) store
    std::vector<SourceState> sources;  // indexed by source id
    std::set<std::uint32_t> done;
    std::uint64_t store_length = 0;    // bytes of the store vouched for
    std::uint64_t last_connection = 0; // the highest connection number journaled
    std::uint64_t torn_bytes = 0;      // an incomplete last line, dropped
};

class Journal {
public:
    // Replays and reopens the journal at `path`. A missing journal is first
    // created with its header for a store of `store_length` bytes. Invalid
    // Journal and `error` set when it cannot be read, is corrupt or is of
    // another format.
    static Journal open(const std::string& path, std::uint64_t store_length, RecoveredState& state,
                        std::string& error);

    bool is_open() const { return fd_.valid(); }
    const std::string& path() const { return path_; }
    // Each record_* stages one line; write_staged() appends every staged
    // line with one write (the coordinator's group commit). On failure
    // (errno set) nothing of them stays behind: the journal is cut back to
    // where it was. Either way the staged lines are gone afterwards.
    void record_source(std::uint32_t id, const SourceState& source);
    void record_open(std::uint32_t id, std::uint64_t connection);
    void record_bets(std::uint32_t id, const SourceState& source, std::uint64_t store_length);
    void record_done(std::uint32_t agency);
    bool write_staged();
    bool has_staged() const { return !staged_.empty(); }
    void drop_staged() { staged_.clear(); }
    int fd() const { return fd_.get(); } // for the commit's Syncer
    std::uint64_t size() const { return size_; }
    // Cuts the journal back to `length` bytes: rolls back lines whose write
    // succeeded but whose decision could not be completed (a failed fsync).
    bool truncate(std::uint64_t length);
    void close() { fd_.reset(); }

private:
    Fd fd_;
    std::string path_;
    std::uint64_t size_ = 0; // bytes in the file (staged lines not counted)
    std::string staged_;
};

// bin/server --repair: with SERVER_FSYNC=false a power loss can leave the
// store shorter than its journal vouches for (the journal's page reached
// the disk, the store's did not). The journal is cut back to its longest
// prefix that vouches for no more than the store holds, so every source
// falls back to a count the store has (its clients resend the rest; the
// next start cuts the store's unvouched tail). `fallbacks` gets each source
// whose count changed. A line that does not parse (a power loss can leave
// zeros) ends the prefix too. False, with `error`, when the files cannot be
// read, the journal has no base line, or the store is shorter than its base.
struct SourceFallback {
    std::uint32_t agency = 0;
    std::string name;
    std::uint64_t before = 0; // the count the journal vouched for
    std::uint64_t after = 0;  // the count it vouches for now
};
bool repair_journal(const std::string& store_path, std::vector<SourceFallback>& fallbacks,
                    std::uint64_t& cut_bytes, std::string& error);

// An exclusive flock on the store, held while the descriptor lives: one
// server (or repair) per store. Invalid Fd and `in_use` set when another
// process holds it; invalid and errno set on another failure.
Fd lock_store(const std::string& store_path, bool& in_use);

// Where the journal of the store at `store_path` lives.
std::string journal_path_for(const std::string& store_path);
// fsync of the directory holding `path`: makes a file created or renamed
// there survive a power cut. False (errno set) on failure.
bool sync_parent_directory(const std::string& path);
