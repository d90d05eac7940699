// The bet store: an append-only CSV file, one bet per line,
//   agency,first_name,last_name,document,birthdate,number
// quoted like Python's csv.QUOTE_MINIMAL. Writes are whole pre-rendered
// lines; reads stream the file back without loading it whole.
#pragma once

#include "common/bet.hpp"
#include "common/fd.hpp"

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

// Appends `bet` as one store line (with '\n') to `out`.
void append_store_line(std::string& out, const Bet& bet);
// Parses one store line (without its line ending) into `bet`; false if malformed.
bool parse_store_line(std::string_view line, Bet& bet);

class BetStore {
public:
    // Opens (creating if needed) `path` for appending. Invalid BetStore and
    // errno set on failure.
    static BetStore open(const std::string& path);

    bool is_open() const { return fd_.valid(); }
    const std::string& path() const { return path_; }
    std::uint64_t size() const { return size_; } // bytes in the store
    // Appends already rendered store lines with one write; false (errno set)
    // if the write failed, and then the store is cut back to its old size so
    // that no partial line stays behind.
    bool append(std::string_view lines);
    // Cuts the store to `length` bytes (crash recovery drops an unvouched tail).
    bool truncate(std::uint64_t length);
    int fd() const { return fd_.get(); } // for the commit's Syncer
    void close() { fd_.reset(); }

private:
    Fd fd_;
    std::string path_;
    std::uint64_t size_ = 0;
};

// The course's store_bets: renders `bets` and appends them in one call. The
// server does not use it: its handlers render the lines and the coordinator
// only calls append(). load_bets below is the course's other operation.
bool store_bets(BetStore& store, const std::vector<Bet>& bets);

struct LoadResult {
    bool ok = true;
    std::uint64_t bets = 0;  // lines read successfully
    std::uint64_t bad_line = 0; // 1-based line number of the first malformed line
    std::string error;
};
using BetVisitor = std::function<void(const Bet&)>;

// Reads the store a slice at a time, so that a caller with other work (the
// coordinator's poll loop) can stop in between: the draw over ten million
// bets never holds up a SIGTERM for long.
class StoreScan {
public:
    // A missing file is an empty store; an unreadable one fails at once.
    explicit StoreScan(const std::string& path);
    // Reads about `bytes` more and passes every whole bet to `visit`. True
    // while there is more to read; the result tells how it ended.
    bool advance(std::size_t bytes, const BetVisitor& visit);
    const LoadResult& result() const { return result_; }

private:
    bool consume_line(std::string_view line, const BetVisitor& visit);
    bool fail(LoadResult failure);
    Fd file_;
    bool finished_ = false;
    std::string buffer_;
    Bet bet_;
    std::uint64_t line_number_ = 0;
    LoadResult result_;
};

// Streams every bet of the store at `path` to `visit` in file order. The Bet
// passed is reused between calls (no allocation per line): copy what you keep.
// A missing file is an empty store.
LoadResult load_bets(const std::string& path, const BetVisitor& visit);
