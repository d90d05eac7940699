// bench_reference: a benchmark tool, not part of the product. It gives the
// server's figures two yardsticks, built from the project's own codec, CSV
// reader and store/log formats.
//
//   bench_reference essential <store-out> <log-out> <csv>...
//     The work the whole system cannot avoid, in one process: one thread per
//     CSV (agency i = i-th file) reads it with BetSource, cuts it into the
//     BETS frames bin/client sends (56 bets, the most an 8 KiB frame holds,
//     the default batch.maxAmount), decodes each frame from its bytes as the
//     server does, and renders one store line and one `apuesta_almacenada`
//     log line per bet. Each frame's lines leave with one write(2) to the
//     store and one to the log, both shared and opened with O_APPEND (a write
//     to a regular file lands whole, so no lock). Both files are truncated
//     first. No sockets, no processes, and none of the rest: no digest
//     hashes, no client log lines, no per-frame `apuesta_recibida` line.
//     Prints `reference | mode: essential | agencies: K | bets: N | seconds: S`
//     (S: from before the threads start to after they join).
//
//   bench_reference load <host:port> <csv>...
//     K connections (agency i = i-th file) to the real server, all open at
//     once. Every frame is encoded and every connection opened first (all
//     OPENs of a thread sent, then their RESUMEs read: RESUME 0 required, a
//     fresh store); then the clock starts and a few
//     threads (one per core, 2..K), each with an epoll loop over its slice
//     of connections, drive every connection as bin/client does: its BETS
//     frames with up to 4 unACKed (config/client.ini's batch.window), each
//     ACKed with its own count, in order; then DONE (ACK), then WINNERS.
//     Prints `load | agencies: K | bets: N | seconds: S | setup_seconds: U |
//     winners: W` (S: from the start to the last WINNERS reply, so the draw
//     is in it; U: reading the files and opening the connections, before the
//     start; W: documents received).
//
//   bench_reference draw <store>
//     The draw's essential work: the store read and parsed line by line with
//     the server's own StoreScan, each bet checked against the winning
//     number. Prints `reference | mode: draw | bets: N | seconds: S |
//     winners: W`.
//
// Exit status 0 on success (load: every reply as expected), 1 on any error
// (reason on stderr), 2 on bad arguments.
#include "client/bet_source.hpp"
#include "common/bet_store.hpp"
#include "common/io.hpp"
#include "common/log.hpp"
#include "common/protocol.hpp"
#include "common/socket.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/resource.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <numeric>
#include <string>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;
constexpr std::size_t kBatchSize = wire::kMaxBetsPerFrame; // config/client.ini's batch.maxAmount
constexpr std::size_t kWindow = 4;                         // config/client.ini's batch.window
constexpr int kReplyTimeoutMs = 300000;                    // WINNERS waits for every agency's DONE

int fail(const std::string& why) {
    std::fprintf(stderr, "bench_reference: %s\n", why.c_str());
    return 1;
}

double seconds_between(Clock::time_point from, Clock::time_point to) {
    return std::chrono::duration<double>(to - from).count();
}

// Runs job(i) for i in [0, n) on n threads and waits for them all.
void run_threads(std::size_t n, const std::function<void(std::size_t)>& job) {
    std::vector<std::thread> threads;
    threads.reserve(n);
    for (std::size_t i = 0; i < n; ++i) threads.emplace_back(job, i);
    for (auto& thread : threads) thread.join();
}

// The first thread error, if any ("" = none).
std::string first_error(const std::vector<std::string>& errors) {
    for (const auto& error : errors)
        if (!error.empty()) return error;
    return "";
}

// The next BETS frame of `source` (up to kBatchSize bets at position `first`),
// cut as bin/client cuts it; false at the end of the data.
bool next_frame(BetSource& source, std::uint32_t agency, std::uint32_t first, std::vector<Bet>& bets,
                wire::Bytes& frame) {
    bets.clear();
    for (Bet bet; bets.size() < kBatchSize && source.next(bet);) bets.push_back(bet);
    if (bets.empty()) return false;
    frame = wire::encode_bets_frame(agency, first, bets);
    return true;
}

// At the end of a source: "" or why it failed. Skipped rows are noted on
// stderr (the log level is raised so that stdout keeps its one line).
std::string end_of_source(const BetSource& source, const std::string& path) {
    if (source.read_error()) return "read error on " + path;
    if (source.skipped_rows() > 0)
        std::fprintf(stderr, "bench_reference: %s: %llu rows skipped\n", path.c_str(),
                     static_cast<unsigned long long>(source.skipped_rows()));
    return "";
}

// ------------------------------------------------------------ essential mode

// The server's part of one frame: decode it from its bytes and render its
// store lines and log lines (the handler's apuesta_almacenada line).
std::string render_frame(const wire::Bytes& frame, std::string& lines, std::string& log, std::size_t& count) {
    const auto header = wire::decode_request_header(frame.data());
    if (!header.ok()) return std::string(header.reason());
    const auto bets = wire::decode_bets(header.value(), frame.data() + wire::kRequestHeaderSize);
    if (!bets.ok()) return std::string(bets.reason());
    lines.clear();
    log.clear();
    for (const Bet& bet : bets.value()) {
        append_store_line(lines, bet);
        format_log_line(log, LogLevel::info, "apuesta_almacenada", Outcome::success,
                        {{"dni", bet.document}, {"numero", bet.number}});
    }
    count = bets.value().size();
    return "";
}

// One agency, start to end; "" or why it failed.
std::string essential_agency(const std::string& path, std::uint32_t agency, int store_fd, int log_fd,
                             std::uint64_t& stored) {
    auto source = BetSource::open(path, agency);
    if (!source) return "cannot open " + path + ": " + std::strerror(errno);
    std::vector<Bet> bets;
    wire::Bytes frame;
    std::string lines, log;
    for (std::size_t count = 0; next_frame(*source, agency, static_cast<std::uint32_t>(stored), bets, frame);
         stored += count) {
        if (auto why = render_frame(frame, lines, log, count); !why.empty()) return path + ": " + why;
        if (write_all(store_fd, lines) != IoStatus::ok || write_all(log_fd, log) != IoStatus::ok)
            return errno_text("write");
    }
    return end_of_source(*source, path);
}

Fd open_output(const char* path) { return Fd(::open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644)); }

int essential(const char* store_path, const char* log_path, const std::vector<std::string>& files) {
    Fd store = open_output(store_path);
    if (!store) return fail(std::string(store_path) + ": " + std::strerror(errno));
    Fd log = open_output(log_path);
    if (!log) return fail(std::string(log_path) + ": " + std::strerror(errno));
    std::vector<std::string> errors(files.size());
    std::vector<std::uint64_t> stored(files.size(), 0);
    const auto started = Clock::now();
    run_threads(files.size(), [&](std::size_t i) {
        errors[i] = essential_agency(files[i], static_cast<std::uint32_t>(i + 1), store.get(), log.get(), stored[i]);
    });
    const double seconds = seconds_between(started, Clock::now());
    if (auto why = first_error(errors); !why.empty()) return fail(why);
    std::printf("reference | mode: essential | agencies: %zu | bets: %llu | seconds: %.3f\n", files.size(),
                static_cast<unsigned long long>(std::accumulate(stored.begin(), stored.end(), 0ull)), seconds);
    return 0;
}

// ----------------------------------------------------------------- load mode

enum class Awaiting { bets, done, winners, finished };

struct Connection {
    std::uint32_t agency = 0;
    Fd socket;
    std::vector<wire::Bytes> frames; // every BETS frame, encoded before the clock starts
    std::vector<std::size_t> counts; // bets in each
    std::size_t sent = 0;            // frames sent so far
    std::size_t acked = 0;           // frames ACKed so far
    Awaiting awaiting = Awaiting::bets;
    std::string source_name;
};

struct SliceResult {
    std::string error;
    std::uint64_t winners = 0;
    Clock::time_point last_reply{};
};

std::string agency_text(const Connection& c) { return "agency " + std::to_string(c.agency) + ": "; }

// Connect and send OPEN; the RESUME is read by await_resume, once every
// connection of the slice has sent its OPEN: the server forks the handlers
// and answers the OPENs in a burst, as it does for agencies starting at once.
std::string send_open(Connection& c, const Endpoint& endpoint, const std::string& name) {
    std::string why;
    c.socket = connect_tcp(endpoint, -1, why);
    if (!c.socket) return "connect: " + why;
    set_no_delay(c.socket.get());
    const wire::Bytes open = wire::encode_open_frame(c.agency, name);
    c.source_name = name;
    const IoStatus status = write_all_watching(c.socket.get(), open.data(), open.size(), -1, kReplyTimeoutMs);
    return status == IoStatus::ok ? std::string() : "OPEN: " + std::string(to_string(status));
}

// "" only if the server answered RESUME 0, digest 0.
std::string await_resume(Connection& c) {
    std::uint8_t head[wire::kReplyHeaderSize + wire::kDigestSize];
    if (read_all_watching(c.socket.get(), head, wire::kReplyHeaderSize, -1, kReplyTimeoutMs) != IoStatus::ok)
        return "OPEN: no reply";
    const auto reply = wire::decode_reply_header(head);
    if (!reply.ok() || reply.value().type != wire::ReplyType::resume) return "OPEN not answered with RESUME";
    if (read_all_watching(c.socket.get(), head + wire::kReplyHeaderSize, wire::kDigestSize, -1, kReplyTimeoutMs) !=
        IoStatus::ok)
        return "RESUME: digest cut short";
    if (reply.value().value != 0 || wire::get_u64(head + wire::kReplyHeaderSize) != 0)
        return "source " + c.source_name + " already holds " + std::to_string(reply.value().value) +
               " bets: use a fresh store";
    return "";
}

// Reads and encodes the agency's file, then connects and sends its OPEN.
std::string prepare(Connection& c, const std::string& path, const Endpoint& endpoint) {
    auto source = BetSource::open(path, c.agency);
    if (!source) return "cannot open " + path + ": " + std::strerror(errno);
    std::vector<Bet> bets;
    std::uint32_t first = 0;
    for (wire::Bytes frame; next_frame(*source, c.agency, first, bets, frame); first += bets.size()) {
        c.frames.push_back(std::move(frame));
        c.counts.push_back(bets.size());
    }
    if (auto why = end_of_source(*source, path); !why.empty()) return why;
    c.awaiting = c.frames.empty() ? Awaiting::done : Awaiting::bets;
    return send_open(c, endpoint, source->name());
}

std::string send_bytes(Connection& c, const wire::Bytes& bytes) {
    const IoStatus status = write_all_watching(c.socket.get(), bytes.data(), bytes.size(), -1, kReplyTimeoutMs);
    return status == IoStatus::ok ? "" : agency_text(c) + "write: " + to_string(status);
}

// Sends what `c` may send now: BETS frames until kWindow are unACKed, or,
// once every frame is ACKed, DONE, then WINNERS. A write may wait for the
// server to read (and hold up this thread's other connections meanwhile),
// but cannot wait forever: the server reads a connection's frames while
// its few small replies wait for us, and they fit in its socket buffer.
std::string send_next(Connection& c) {
    if (c.awaiting == Awaiting::done) return send_bytes(c, wire::encode_request(wire::RequestType::done, c.agency));
    if (c.awaiting == Awaiting::winners)
        return send_bytes(c, wire::encode_request(wire::RequestType::winners, c.agency));
    for (; c.sent < c.frames.size() && c.sent - c.acked < kWindow; ++c.sent)
        if (auto why = send_bytes(c, c.frames[c.sent]); !why.empty()) return why;
    return "";
}

// Reads the reply epoll said is arriving (the rest of it, if it comes in
// pieces, is waited for), checks it, and sends what may go next: one more
// BETS frame, or DONE, or WINNERS.
std::string on_reply(Connection& c, SliceResult& result) {
    std::uint8_t head[wire::kReplyHeaderSize];
    if (auto status = read_all_watching(c.socket.get(), head, sizeof head, -1, kReplyTimeoutMs); status != IoStatus::ok)
        return agency_text(c) + "reply: " + to_string(status);
    const auto decoded = wire::decode_reply_header(head);
    if (!decoded.ok()) return agency_text(c) + std::string(decoded.reason());
    const wire::ReplyHeader reply = decoded.value();
    const std::string got = " (reply type " + std::to_string(static_cast<int>(reply.type)) + ", value " +
                            std::to_string(reply.value) + ")";
    if (c.awaiting == Awaiting::bets) {
        if (reply.type != wire::ReplyType::ack || reply.value != c.counts[c.acked])
            return agency_text(c) + "frame " + std::to_string(c.acked + 1) + " not ACKed with its count" + got;
        if (++c.acked == c.frames.size()) c.awaiting = Awaiting::done;
    } else if (c.awaiting == Awaiting::done) {
        if (reply.type != wire::ReplyType::ack) return agency_text(c) + "DONE not ACKed" + got;
        c.awaiting = Awaiting::winners;
    } else {
        if (reply.type != wire::ReplyType::winners) return agency_text(c) + "WINNERS not answered" + got;
        std::vector<std::uint8_t> documents(std::size_t{reply.value} * wire::kDocumentSize);
        if (read_all_watching(c.socket.get(), documents.data(), documents.size(), -1, kReplyTimeoutMs) != IoStatus::ok)
            return agency_text(c) + "WINNERS: documents cut short";
        result.winners += reply.value;
        result.last_reply = Clock::now();
        c.awaiting = Awaiting::finished;
        return "";
    }
    return send_next(c);
}

// One thread's share: every connection of [begin, end) driven to its WINNERS.
std::string drive_slice(Connection* begin, Connection* end, SliceResult& result) {
    Fd poller(::epoll_create1(EPOLL_CLOEXEC));
    if (!poller) return errno_text("epoll_create1");
    for (Connection* c = begin; c != end; ++c) {
        epoll_event event{};
        event.events = EPOLLIN;
        event.data.ptr = c;
        if (::epoll_ctl(poller.get(), EPOLL_CTL_ADD, c->socket.get(), &event) != 0) return errno_text("epoll_ctl");
        if (auto why = send_next(*c); !why.empty()) return why;
    }
    epoll_event events[64];
    for (auto waiting = static_cast<std::size_t>(end - begin); waiting > 0;) {
        const int ready = ::epoll_wait(poller.get(), events, 64, kReplyTimeoutMs);
        if (ready < 0 && errno == EINTR) continue;
        if (ready < 0) return errno_text("epoll_wait");
        if (ready == 0) return "no reply for " + std::to_string(kReplyTimeoutMs / 1000) + " s";
        for (int i = 0; i < ready; ++i) {
            auto& c = *static_cast<Connection*>(events[i].data.ptr);
            if (auto why = on_reply(c, result); !why.empty()) return why;
            if (c.awaiting != Awaiting::finished) continue;
            ::epoll_ctl(poller.get(), EPOLL_CTL_DEL, c.socket.get(), nullptr);
            --waiting;
        }
    }
    return "";
}

// K connections need K descriptors: raise the soft limit up to the hard one.
std::string raise_descriptor_limit(std::size_t connections) {
    const rlim_t needed = connections + 64;
    rlimit limit{};
    if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) return errno_text("getrlimit");
    if (limit.rlim_cur >= needed) return "";
    if (limit.rlim_max < needed)
        return "impossible: " + std::to_string(connections) + " connections need " + std::to_string(needed) +
               " descriptors, RLIMIT_NOFILE's hard limit is " + std::to_string(limit.rlim_max);
    limit.rlim_cur = needed;
    return ::setrlimit(RLIMIT_NOFILE, &limit) == 0 ? "" : errno_text("setrlimit");
}

int load(const Endpoint& endpoint, const std::vector<std::string>& files) {
    const auto launched = Clock::now();
    if (auto why = raise_descriptor_limit(files.size()); !why.empty()) return fail(why);
    const std::size_t k = files.size();
    const std::size_t threads = std::min<std::size_t>(k, std::max(2u, std::thread::hardware_concurrency()));
    const auto slice_begin = [&](std::size_t t) { return t * k / threads; };
    std::vector<Connection> connections(k);
    std::vector<std::string> errors(threads);
    run_threads(threads, [&](std::size_t t) { // untimed: encode and OPEN everything
        for (std::size_t i = slice_begin(t); i < slice_begin(t + 1) && errors[t].empty(); ++i) {
            connections[i].agency = static_cast<std::uint32_t>(i + 1);
            if (auto why = prepare(connections[i], files[i], endpoint); !why.empty())
                errors[t] = agency_text(connections[i]) + why;
        }
        for (std::size_t i = slice_begin(t); i < slice_begin(t + 1) && errors[t].empty(); ++i)
            if (auto why = await_resume(connections[i]); !why.empty()) errors[t] = agency_text(connections[i]) + why;
    });
    if (auto why = first_error(errors); !why.empty()) return fail(why);

    std::vector<SliceResult> results(threads);
    const auto started = Clock::now(); // the barrier: every connection is open
    run_threads(threads, [&](std::size_t t) {
        results[t].error = drive_slice(&connections[slice_begin(t)], &connections[0] + slice_begin(t + 1), results[t]);
    });
    std::uint64_t bets = 0, winners = 0;
    auto last = started;
    for (const auto& result : results) {
        if (!result.error.empty()) return fail(result.error);
        winners += result.winners;
        last = std::max(last, result.last_reply);
    }
    for (const auto& c : connections) bets += std::accumulate(c.counts.begin(), c.counts.end(), 0ull);
    std::printf("load | agencies: %zu | bets: %llu | seconds: %.3f | setup_seconds: %.3f | winners: %llu\n", k,
                static_cast<unsigned long long>(bets), seconds_between(started, last),
                seconds_between(launched, started), static_cast<unsigned long long>(winners));
    return 0;
}

int draw(const char* store_path) {
    const Clock::time_point started = Clock::now();
    StoreScan scan(store_path);
    unsigned long long winners = 0;
    while (scan.advance(1 << 20, [&winners](const Bet& bet) { winners += has_won(bet); })) {}
    const Clock::time_point finished = Clock::now();
    if (!scan.result().ok) return fail(std::string(store_path) + ": " + scan.result().error);
    std::printf("reference | mode: draw | bets: %llu | seconds: %.3f | winners: %llu\n",
                static_cast<unsigned long long>(scan.result().bets), seconds_between(started, finished), winners);
    return 0;
}

} // namespace

int main(int argc, char** argv) {
    const std::string mode = argc > 1 ? argv[1] : "";
    if (mode == "draw" && argc == 3) return draw(argv[2]);
    const int first_file = mode == "essential" ? 4 : 3;
    const auto endpoint = mode == "load" && argc > 2 ? parse_endpoint(argv[2]) : std::nullopt;
    const std::vector<std::string> files(argv + std::min(first_file, argc), argv + argc);
    // Agency numbers are 1..65535.
    if ((mode != "essential" && !endpoint) || files.empty() || files.size() > 65535) {
        std::fprintf(stderr, "usage: bench_reference essential <store-out> <log-out> <csv>...\n"
                             "       bench_reference load <host:port> <csv>...\n"
                             "       bench_reference draw <store>\n");
        return 2;
    }
    ::signal(SIGPIPE, SIG_IGN);
    set_log_level(LogLevel::error); // BetSource's skipped-row warnings would go to stdout
    return mode == "essential" ? essential(argv[2], argv[3], files) : load(*endpoint, files);
}
