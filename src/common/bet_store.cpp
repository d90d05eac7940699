// CSV bet store (see bet_store.hpp).
#include "common/bet_store.hpp"

#include "common/csv.hpp"
#include "common/io.hpp"
#include "common/log.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>

namespace {

template <typename Number>
void append_number(std::string& out, Number number) {
    char digits[16];
    const auto result = std::to_chars(digits, digits + sizeof digits, number);
    out.append(digits, result.ptr);
}

template <typename Number>
bool parse_number(const std::string& text, Number& number) {
    const auto [end, status] = std::from_chars(text.data(), text.data() + text.size(), number);
    return status == std::errc{} && end == text.data() + text.size() && !text.empty();
}

} // namespace

void append_store_line(std::string& out, const Bet& bet) {
    append_number(out, bet.agency);
    out.push_back(',');
    append_csv_field(out, bet.first_name);
    out.push_back(',');
    append_csv_field(out, bet.last_name);
    out.push_back(',');
    append_csv_field(out, bet.document);
    out.push_back(',');
    append_csv_field(out, bet.birthdate);
    out.push_back(',');
    append_number(out, bet.number);
    out.push_back('\n');
}

bool parse_store_line(std::string_view line, Bet& bet) {
    // Reused between calls and swapped into `bet`: the draw parses millions
    // of lines without an allocation per field.
    thread_local std::vector<std::string> fields;
    if (!split_csv_line(line, fields) || fields.size() != 6) return false;
    if (!parse_number(fields[0], bet.agency) || !parse_number(fields[5], bet.number)) return false;
    bet.first_name.swap(fields[1]);
    bet.last_name.swap(fields[2]);
    bet.document.swap(fields[3]);
    bet.birthdate.swap(fields[4]);
    return true;
}

BetStore BetStore::open(const std::string& path) {
    BetStore store;
    store.path_ = path;
    store.fd_.reset(::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644));
    struct stat status {};
    if (store.fd_ && ::fstat(store.fd_.get(), &status) == 0) store.size_ = static_cast<std::uint64_t>(status.st_size);
    return store;
}

bool BetStore::append(std::string_view lines) {
    if (write_all(fd_.get(), lines.data(), lines.size()) == IoStatus::ok) {
        size_ += lines.size();
        return true;
    }
    const int saved = errno;
    (void)truncate(size_);
    errno = saved;
    return false;
}

bool BetStore::truncate(std::uint64_t length) {
    if (::ftruncate(fd_.get(), static_cast<off_t>(length)) != 0) return false;
    size_ = length;
    return true;
}

bool store_bets(BetStore& store, const std::vector<Bet>& bets) {
    std::string lines;
    for (const Bet& bet : bets) append_store_line(lines, bet);
    return store.append(lines);
}

StoreScan::StoreScan(const std::string& path) : file_(::open(path.c_str(), O_RDONLY | O_CLOEXEC)) {
    if (file_) return;
    finished_ = true;
    if (errno != ENOENT) result_ = LoadResult{false, 0, 0, errno_text("open")};
}

bool StoreScan::fail(LoadResult failure) {
    result_ = std::move(failure);
    finished_ = true;
    file_.reset();
    return false;
}

// Accepts LF and CRLF and skips empty lines.
bool StoreScan::consume_line(std::string_view line, const BetVisitor& visit) {
    ++line_number_;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) return true;
    if (!parse_store_line(line, bet_)) return fail(LoadResult{false, result_.bets, line_number_, "malformed store line"});
    ++result_.bets;
    visit(bet_);
    return true;
}

// Reads 64 KiB at a time, so memory does not grow with the store; a last
// line without its '\n' is read too.
bool StoreScan::advance(std::size_t bytes, const BetVisitor& visit) {
    char chunk[1 << 16];
    for (std::size_t read = 0; !finished_ && read < bytes;) {
        const ssize_t got = ::read(file_.get(), chunk, sizeof chunk);
        if (got < 0 && errno == EINTR) continue;
        if (got < 0) return fail(LoadResult{false, result_.bets, 0, errno_text("read")});
        if (got == 0) {
            finished_ = true;
            file_.reset();
            if (!buffer_.empty() && !consume_line(buffer_, visit)) return false;
            break;
        }
        read += static_cast<std::size_t>(got);
        buffer_.append(chunk, static_cast<std::size_t>(got));
        std::size_t start = 0;
        for (std::size_t end; (end = buffer_.find('\n', start)) != std::string::npos; start = end + 1)
            if (!consume_line(std::string_view(buffer_).substr(start, end - start), visit)) return false;
        buffer_.erase(0, start);
    }
    return !finished_;
}

LoadResult load_bets(const std::string& path, const BetVisitor& visit) {
    StoreScan scan(path);
    while (scan.advance(SIZE_MAX, visit)) {}
    return scan.result();
}
