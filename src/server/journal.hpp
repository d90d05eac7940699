// The coordinator's memory across restarts: an append-only text file next to
// the bet store (`<store>.journal`) with one line per decision, written after
// the bets themselves and before the ACK:
//   base <store bytes>                               first line: the store as found
//   batch <agency> <batch> <store bytes after it>    a batch is in the store
//   done <agency>                                    the agency said DONE
// A journal is born whole (written aside, then renamed into place) with its
// base line, so a store found without one - new, or older than journals - is
// vouched for as it is, exactly once.
// On start the journal is replayed: it restores each agency's last batch and
// the done set, and vouches for a store length. Whatever the store holds past
// that length was written by a coordinator that died before journaling it,
// was never acknowledged, and is cut off; the client will resend it.
#pragma once

#include "common/fd.hpp"

#include <cstdint>
#include <map>
#include <set>
#include <string>

struct RecoveredState {
    bool had_journal = false;                           // false: a new (or legacy) store
    std::map<std::uint32_t, std::uint32_t> last_batch;  // agency -> last stored batch
    std::set<std::uint32_t> done;
    std::uint64_t store_length = 0;                     // bytes of the store vouched for
    std::uint64_t batches = 0;                          // batch lines replayed
    std::uint64_t torn_bytes = 0;                       // an incomplete last line, dropped
};

class Journal {
public:
    // Replays and reopens the journal at `path`. A missing journal is first
    // created with the line `base <store_length>`. Invalid Journal and
    // `error` set when it cannot be read or is corrupt.
    static Journal open(const std::string& path, std::uint64_t store_length, RecoveredState& state,
                        std::string& error);

    bool is_open() const { return fd_.valid(); }
    const std::string& path() const { return path_; }
    bool record_batch(std::uint32_t agency, std::uint32_t batch, std::uint64_t store_length);
    bool record_done(std::uint32_t agency);
    bool sync(); // fsync
    void close() { fd_.reset(); }

private:
    bool append(const std::string& line);
    Fd fd_;
    std::string path_;
};

// Where the journal of the store at `store_path` lives.
std::string journal_path_for(const std::string& store_path);
