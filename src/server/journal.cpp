// Journal replay and appends (see journal.hpp).
#include "server/journal.hpp"

#include "common/io.hpp"
#include "common/log.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <sstream>

namespace {

// Applies one complete journal line to `state`; false if it is not one.
bool replay_line(const std::string& line, RecoveredState& state) {
    std::istringstream fields(line);
    std::string kind;
    std::uint32_t agency = 0, batch = 0;
    std::uint64_t length = 0;
    if (!(fields >> kind)) return false;
    if (kind == "base" && fields >> length && fields.eof()) {
        state.store_length = length;
        return true;
    }
    if (kind == "batch" && fields >> agency >> batch >> length && fields.eof()) {
        state.last_batch[agency] = batch;
        state.store_length = length;
        ++state.batches;
        return true;
    }
    if (kind == "done" && fields >> agency && fields.eof()) {
        state.done.insert(agency);
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
            if (!replay_line(pending.substr(start, end - start), state))
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
