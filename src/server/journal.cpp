// Journal replay and appends (see journal.hpp).
#include "server/journal.hpp"

#include "common/io.hpp"
#include "common/log.hpp"
#include "common/protocol.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <climits>
#include <string_view>

namespace {

constexpr std::string_view kHeader = "journal 2";

// The words of one line, split on single spaces.
std::vector<std::string_view> words_of(std::string_view line) {
    std::vector<std::string_view> words;
    for (std::size_t space; (space = line.find(' ')) != std::string_view::npos; line.remove_prefix(space + 1))
        words.push_back(line.substr(0, space));
    words.push_back(line);
    return words;
}

// A decimal number, digits only ("-1" and "" are not numbers here).
bool parse(std::string_view word, std::uint64_t& number, std::uint64_t max = UINT64_MAX) {
    const char* last = word.data() + word.size();
    const auto [end, status] = std::from_chars(word.data(), last, number);
    return status == std::errc{} && end == last && !word.empty() && number <= max;
}

// Applies one complete journal line (after the header) to `state`; false if
// it is not a valid one.
bool replay_line(std::string_view line, RecoveredState& state) {
    const std::vector<std::string_view> w = words_of(line);
    const std::string_view kind = w[0];
    std::uint64_t a = 0, b = 0, c = 0, d = 0;
    const auto known = [&](std::uint64_t id) { return id < state.sources.size(); };
    if (kind == "base" && w.size() == 2 && parse(w[1], a)) {
        state.store_length = a;
        return true;
    }
    if (kind == "source" && w.size() == 4 && parse(w[1], a) && a == state.sources.size() &&
        parse(w[2], b, UINT32_MAX) && wire::is_valid_source_name(w[3])) {
        state.sources.push_back(SourceState{static_cast<std::uint32_t>(b), std::string(w[3]), 0, 0, 0});
        return true;
    }
    if (kind == "open" && w.size() == 3 && parse(w[1], a) && known(a) && parse(w[2], b)) {
        state.sources[a].opener = b;
        state.last_connection = std::max(state.last_connection, b);
        return true;
    }
    if (kind == "bets" && w.size() == 5 && parse(w[1], a) && known(a) && parse(w[2], b) && parse(w[3], c) &&
        parse(w[4], d)) {
        state.sources[a].stored = b;
        state.sources[a].digest = c;
        state.store_length = d;
        return true;
    }
    if (kind == "done" && w.size() == 2 && parse(w[1], a, UINT32_MAX)) {
        state.done.insert(static_cast<std::uint32_t>(a));
        return true;
    }
    return false;
}

// What is wrong with a first line that is not this format's header.
std::string header_problem(std::string_view line) {
    if (line.rfind("base ", 0) == 0)
        return "journal of format 1 (batch numbers), which this server no longer reads: its store was "
               "written by an older version; move the store and its journal aside to start a new one";
    return "not a journal of format 2 (first line '" + std::string(line.substr(0, 40)) + "')";
}

// The whole file at `path` (a journal is megabytes at most); `error` set on failure.
std::string read_whole(const std::string& path, std::string& error) {
    Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) return error = errno_text("open " + path), std::string();
    std::string text;
    char chunk[1 << 16];
    for (ssize_t got; (got = ::read(fd.get(), chunk, sizeof chunk)) != 0;) {
        if (got < 0 && errno == EINTR) continue;
        if (got < 0) return error = errno_text("read " + path), std::string();
        text.append(chunk, static_cast<std::size_t>(got));
    }
    return text;
}

// Writes `<path>.new` with the header and base lines, then renames it into
// place and syncs the directory: a crash leaves either no journal or a whole one.
bool create_journal(const std::string& path, std::uint64_t store_length, std::string& error) {
    const std::string aside = path + ".new";
    Fd fd(::open(aside.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    const std::string head = std::string(kHeader) + "\nbase " + std::to_string(store_length) + "\n";
    if (!fd || write_all(fd.get(), head) != IoStatus::ok || ::fsync(fd.get()) != 0 ||
        ::rename(aside.c_str(), path.c_str()) != 0 || !sync_parent_directory(path)) {
        error = errno_text("create " + path);
        return false;
    }
    return true;
}

} // namespace

std::string journal_path_for(const std::string& store_path) { return store_path + ".journal"; }

Fd lock_store(const std::string& store_path, bool& in_use) {
    Fd lock(::open(store_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
    in_use = false;
    if (lock && ::flock(lock.get(), LOCK_EX | LOCK_NB) == 0) return lock;
    in_use = lock && errno == EWOULDBLOCK;
    return Fd{};
}

bool repair_journal(const std::string& store_path, std::vector<SourceFallback>& fallbacks, std::uint64_t& cut_bytes,
                    std::string& error) {
    const std::string path = journal_path_for(store_path);
    const std::string text = read_whole(path, error);
    if (!error.empty()) return false;
    struct stat store{};
    if (::stat(store_path.c_str(), &store) != 0) return error = errno_text("stat " + store_path), false;
    const std::uint64_t store_size = static_cast<std::uint64_t>(store.st_size);
    // The whole journal (`all`) and the end of its longest prefix that
    // vouches for no more than the store holds (`cut`: the vouched length
    // only grows, so the prefix ends at the first line past the store).
    RecoveredState all;
    std::size_t cut = 0, line_number = 0;
    for (std::size_t start = 0, end; (end = text.find('\n', start)) != std::string::npos; start = end + 1) {
        const std::string_view line = std::string_view(text).substr(start, end - start);
        const std::string where = path + ":" + std::to_string(++line_number) + ": ";
        if (line_number == 1 && line != kHeader) return error = where + header_problem(line), false;
        // A power loss can leave garbage (zeros) in the journal's last
        // block: the first line that does not parse ends what it vouches for.
        if (line_number > 1 && !replay_line(line, all)) break;
        if (all.store_length <= store_size && cut == start) cut = end + 1;
    }
    if (line_number < 2) return error = path + ": no `base` line: not a journal this repair can cut", false;
    if (cut <= text.find('\n') + 1)
        return error = store_path + " is shorter than its journal's base: bets stored before the journal are lost", false;
    RecoveredState kept;
    for (std::size_t start = text.find('\n') + 1, end; start < cut; start = end + 1) {
        end = text.find('\n', start);
        replay_line(std::string_view(text).substr(start, end - start), kept);
    }
    for (std::size_t id = 0; id < all.sources.size(); ++id) {
        const std::uint64_t after = id < kept.sources.size() ? kept.sources[id].stored : 0;
        if (after != all.sources[id].stored)
            fallbacks.push_back({all.sources[id].agency, all.sources[id].name, all.sources[id].stored, after});
    }
    cut_bytes = text.size() - cut;
    if (cut_bytes == 0) return true;
    Fd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
    if (!fd || ::ftruncate(fd.get(), static_cast<off_t>(cut)) != 0 || ::fsync(fd.get()) != 0)
        return error = errno_text("cut " + path), false;
    return true;
}

bool sync_parent_directory(const std::string& path) {
    const std::size_t slash = path.rfind('/');
    const std::string directory = slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
    Fd fd(::open(directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    return fd && ::fsync(fd.get()) == 0;
}

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
            const std::string_view line = std::string_view(pending).substr(start, end - start);
            const std::string where = path + ":" + std::to_string(++line_number) + ": ";
            if (line_number == 1 && line != kHeader) return error = where + header_problem(line), Journal{};
            if (line_number > 1 && !replay_line(line, state))
                return error = where + "corrupt journal line", Journal{};
        }
        complete_bytes += start;
        pending.erase(0, start);
    }
    if (line_number == 0) return error = path + ": empty journal (no '" + std::string(kHeader) + "' line)", Journal{};
    // A line without its '\n' was being written when the coordinator died:
    // nothing was acknowledged on its strength, so it is dropped.
    state.torn_bytes = pending.size();
    if (state.torn_bytes > 0 && ::ftruncate(fd.get(), static_cast<off_t>(complete_bytes)) != 0)
        return error = errno_text("ftruncate " + path), Journal{};
    journal.fd_ = std::move(fd);
    journal.size_ = complete_bytes;
    return journal;
}

void Journal::record_source(std::uint32_t id, const SourceState& source) {
    staged_ += "source " + std::to_string(id) + " " + std::to_string(source.agency) + " " + source.name + "\n";
}

void Journal::record_open(std::uint32_t id, std::uint64_t connection) {
    staged_ += "open " + std::to_string(id) + " " + std::to_string(connection) + "\n";
}

void Journal::record_bets(std::uint32_t id, const SourceState& source, std::uint64_t store_length) {
    staged_ += "bets " + std::to_string(id) + " " + std::to_string(source.stored) + " " +
               std::to_string(source.digest) + " " + std::to_string(store_length) + "\n";
}

void Journal::record_done(std::uint32_t agency) { staged_ += "done " + std::to_string(agency) + "\n"; }

bool Journal::write_staged() {
    std::string lines;
    lines.swap(staged_);
    if (write_all(fd_.get(), lines.data(), lines.size()) == IoStatus::ok) {
        size_ += lines.size();
        return true;
    }
    const int saved = errno; // a short write (disk full) must not leave half a line
    (void)truncate(size_);
    errno = saved;
    return false;
}

bool Journal::truncate(std::uint64_t length) {
    if (::ftruncate(fd_.get(), static_cast<off_t>(length)) != 0) return false;
    size_ = length;
    return true;
}
