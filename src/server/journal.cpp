// Journal replay and appends (see journal.hpp).
#include "server/journal.hpp"

#include "common/io.hpp"
#include "common/log.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <charconv>
#include <climits>
#include <cstdint>
#include <string_view>

namespace {

// Splits `line` into its first word and up to three decimal numbers (digits
// only: "-1" is not a number here).
bool split_numbers(std::string_view line, std::string_view& kind, std::uint64_t (&numbers)[3], int& count) {
    std::size_t space = line.find(' ');
    kind = line.substr(0, space);
    count = 0;
    while (space != std::string_view::npos) {
        line.remove_prefix(space + 1);
        space = line.find(' ');
        const std::string_view word = line.substr(0, space);
        if (count == 3 || word.empty()) return false;
        const char* last = word.data() + word.size();
        const auto [end, status] = std::from_chars(word.data(), last, numbers[count++]);
        if (status != std::errc{} || end != last) return false;
    }
    return true;
}

// Applies one complete journal line to `state`; false if it is not one.
bool replay_line(std::string_view line, RecoveredState& state) {
    std::string_view kind;
    std::uint64_t number[3] = {};
    int count = 0;
    if (!split_numbers(line, kind, number, count)) return false;
    const auto fits_u32 = [&](int i) { return number[i] <= UINT32_MAX; };
    if (kind == "base" && count == 1) {
        state.store_length = number[0];
        return true;
    }
    if (kind == "batch" && count == 3 && fits_u32(0) && fits_u32(1)) {
        state.last_batch[static_cast<std::uint32_t>(number[0])] = static_cast<std::uint32_t>(number[1]);
        state.store_length = number[2];
        ++state.batches;
        return true;
    }
    if (kind == "done" && count == 1 && fits_u32(0)) {
        state.done.insert(static_cast<std::uint32_t>(number[0]));
        return true;
    }
    return false;
}

// Writes `<path>.new` with its base line, then renames it into place: a
// crash leaves either no journal or a whole one.
bool create_journal(const std::string& path, std::uint64_t store_length, std::string& error) {
    const std::string aside = path + ".new";
    Fd fd(::open(aside.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    const std::string base = "base " + std::to_string(store_length) + "\n";
    if (!fd || write_all(fd.get(), base) != IoStatus::ok || ::fsync(fd.get()) != 0 ||
        ::rename(aside.c_str(), path.c_str()) != 0) {
        error = errno_text("create " + path);
        return false;
    }
    return true;
}

} // namespace

std::string journal_path_for(const std::string& store_path) { return store_path + ".journal"; }

Journal Journal::open(const std::string& path, std::uint64_t store_length, RecoveredState& state,
                      std::string& error) {
    Journal journal;
    journal.path_ = path;
    state.had_journal = ::access(path.c_str(), F_OK) == 0;
    if (!state.had_journal && !create_journal(path, store_length, error)) return Journal{};
    Fd fd(::open(path.c_str(), O_RDWR | O_APPEND | O_CLOEXEC));
    if (!fd) return error = errno_text("open " + path), Journal{};
    // Streamed in chunks: the journal of a 10-million-bet store is megabytes.
    std::string pending;
    std::uint64_t complete_bytes = 0, line_number = 0;
    char chunk[1 << 16];
    for (;;) {
        const ssize_t got = ::read(fd.get(), chunk, sizeof chunk);
        if (got < 0 && errno == EINTR) continue;
        if (got < 0) return error = errno_text("read " + path), Journal{};
        if (got == 0) break;
        pending.append(chunk, static_cast<std::size_t>(got));
        std::size_t start = 0;
        for (std::size_t end; (end = pending.find('\n', start)) != std::string::npos; start = end + 1) {
            ++line_number;
            if (!replay_line(std::string_view(pending).substr(start, end - start), state))
                return error = path + ":" + std::to_string(line_number) + ": corrupt journal line", Journal{};
        }
        complete_bytes += start;
        pending.erase(0, start);
    }
    // A line without its '\n' was being written when the coordinator died:
    // nothing was acknowledged on its strength, so it is dropped.
    state.torn_bytes = pending.size();
    if (state.torn_bytes > 0 && ::ftruncate(fd.get(), static_cast<off_t>(complete_bytes)) != 0)
        return error = errno_text("ftruncate " + path), Journal{};
    journal.fd_ = std::move(fd);
    return journal;
}

bool Journal::append(const std::string& line) {
    return write_all(fd_.get(), line.data(), line.size()) == IoStatus::ok;
}

bool Journal::record_batch(std::uint32_t agency, std::uint32_t batch, std::uint64_t store_length) {
    return append("batch " + std::to_string(agency) + " " + std::to_string(batch) + " " +
                  std::to_string(store_length) + "\n");
}

bool Journal::record_done(std::uint32_t agency) { return append("done " + std::to_string(agency) + "\n"); }

bool Journal::sync() { return ::fsync(fd_.get()) == 0; }
