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
//   bench_reference load [--no-barrier] <host:port> <csv>...
//     K connections (agency i = i-th file) to the real server. Every frame
//     is encoded and every connection opened first (connects and OPENs
//     driven together by an epoll loop per thread, until every RESUME is
//     read: RESUME 0 required, a fresh store); then the clock starts and a
//     few threads (one per core, 2..K), each with an epoll loop over its
//     slice of connections, drive every connection as bin/client does: its BETS
//     frames with up to 4 unACKed (config/client.ini's batch.window), each
//     ACKed with its own count, in order; then DONE (ACK), then WINNERS.
//     Prints `load | agencies: K | bets: N | seconds: S | setup_seconds: U |
//     winners: W` (S: from the start to the last WINNERS reply, so the draw
//     is in it; U: reading the files and opening the connections, before the
//     start; W: documents received). With --no-barrier the clock starts once
//     the files are encoded and each connection goes on as soon as its OPEN
//     is answered: the only way through a server that serves a bounded
//     number of connections at a time (its defaults), where the K OPENs
//     cannot all be answered before any connection has finished.
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
#include <netdb.h>
#include <netinet/in.h>
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

enum class Awaiting { connected, resume, bets, done, winners, finished };

struct Connection {
    std::uint32_t agency = 0;
    Fd socket;
    std::vector<wire::Bytes> frames; // every BETS frame, encoded before the clock starts
    std::vector<std::size_t> counts; // bets in each
    std::size_t sent = 0;            // frames sent so far
    std::size_t acked = 0;           // frames ACKed so far
    Awaiting awaiting = Awaiting::connected;
    std::string source_name;
    int reconnects = 0; // before its RESUME: the connection was lost, and made again
};

constexpr int kMaxReconnects = 10; // as bin/client

struct SliceResult {
    std::string error;
    std::uint64_t winners = 0;
    std::uint64_t reconnects = 0;
    Clock::time_point last_reply{};
};

std::string agency_text(const Connection& c) { return "agency " + std::to_string(c.agency) + ": "; }

// Starts a non-blocking connect: many connections of a thread progress at
// once, each as far as the server lets it (a server that serves a bounded
// number of connections at a time answers the others' OPENs later).
std::string start_connect(Connection& c, const sockaddr_in& server) {
    c.socket.reset(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!c.socket) return errno_text("socket");
    if (::connect(c.socket.get(), reinterpret_cast<const sockaddr*>(&server), sizeof server) != 0 &&
        errno != EINPROGRESS)
        return errno_text("connect");
    return "";
}

// The server's IPv4 address (the benchmark's loopback one).
bool resolve_server(const Endpoint& endpoint, sockaddr_in& server) {
    addrinfo hints{};
    hints.ai_family = AF_INET;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* found = nullptr;
    if (::getaddrinfo(endpoint.host.c_str(), std::to_string(endpoint.port).c_str(), &hints, &found) != 0) return false;
    std::memcpy(&server, found->ai_addr, sizeof server);
    ::freeaddrinfo(found);
    return true;
}

// The connect finished: check it, send OPEN (its RESUME comes back later).
std::string send_open(Connection& c) {
    int status = 0;
    socklen_t length = sizeof status;
    ::getsockopt(c.socket.get(), SOL_SOCKET, SO_ERROR, &status, &length);
    if (status != 0) return "connect: " + std::string(std::strerror(status));
    set_no_delay(c.socket.get());
    const wire::Bytes open = wire::encode_open_frame(c.agency, c.source_name);
    const IoStatus sent = write_all_watching(c.socket.get(), open.data(), open.size(), -1, kReplyTimeoutMs);
    c.awaiting = Awaiting::resume;
    return sent == IoStatus::ok ? std::string() : "OPEN: " + std::string(to_string(sent));
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
    c.awaiting = c.frames.empty() ? Awaiting::done : Awaiting::bets;
    return "";
}

// Reads and encodes the agency's file (before any connection).
std::string prepare(Connection& c, const std::string& path) {
    auto source = BetSource::open(path, c.agency);
    if (!source) return "cannot open " + path + ": " + std::strerror(errno);
    std::vector<Bet> bets;
    std::uint32_t first = 0;
    for (wire::Bytes frame; next_frame(*source, c.agency, first, bets, frame); first += bets.size()) {
        c.frames.push_back(std::move(frame));
        c.counts.push_back(bets.size());
    }
    c.source_name = source->name();
    return end_of_source(*source, path);
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
    if (c.awaiting == Awaiting::resume) {
        if (auto why = await_resume(c); !why.empty()) return agency_text(c) + why;
        return send_next(c);
    }
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

// One thread's share: every connection of [begin, end) driven from where it
// is until it awaits `until` (its first BETS: every OPEN answered, for the
// barrier; or `finished`: its WINNERS received). Connections not yet
// connected are connected first.
std::string drive_slice(Connection* begin, Connection* end, const sockaddr_in& server, Awaiting until,
                        SliceResult& result) {
    Fd poller(::epoll_create1(EPOLL_CLOEXEC));
    if (!poller) return errno_text("epoll_create1");
    const auto watch = [&](Connection& c, std::uint32_t events, int operation) {
        epoll_event event{};
        event.events = events;
        event.data.ptr = &c;
        return ::epoll_ctl(poller.get(), operation, c.socket.get(), &event) == 0;
    };
    // Connects (again, after a connection lost before its RESUME, as
    // bin/client reconnects: a server at its admission limits may close a
    // connection whose OPEN comes late).
    const auto connect = [&](Connection& c) -> std::string {
        if (c.socket) {
            ::epoll_ctl(poller.get(), EPOLL_CTL_DEL, c.socket.get(), nullptr);
            if (++c.reconnects > kMaxReconnects) return agency_text(c) + "too many reconnects";
            ++result.reconnects;
        }
        c.awaiting = Awaiting::connected;
        if (auto why = start_connect(c, server); !why.empty()) return agency_text(c) + why;
        return watch(c, EPOLLOUT, EPOLL_CTL_ADD) ? "" : errno_text("epoll_ctl");
    };
    for (Connection* c = begin; c != end; ++c) {
        if (c->awaiting == Awaiting::connected) {
            if (auto why = connect(*c); !why.empty()) return why;
            continue;
        }
        if (!watch(*c, EPOLLIN, EPOLL_CTL_ADD)) return errno_text("epoll_ctl");
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
            if (c.awaiting == Awaiting::connected) {
                if (!send_open(c).empty()) {
                    if (auto why = connect(c); !why.empty()) return why;
                    continue;
                }
                if (!watch(c, EPOLLIN, EPOLL_CTL_MOD)) return errno_text("epoll_ctl");
                continue;
            }
            const bool barrier = until == Awaiting::bets && c.awaiting == Awaiting::resume;
            const bool opening = c.awaiting == Awaiting::resume;
            std::string why = barrier ? await_resume(c) : on_reply(c, result);
            if (!why.empty() && opening && c.awaiting == Awaiting::resume) { // lost before its RESUME
                if (why = connect(c); !why.empty()) return why;
                continue;
            }
            if (!why.empty()) return barrier ? agency_text(c) + why : why;
            if (!barrier && c.awaiting != Awaiting::finished) continue;
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

int load(const Endpoint& endpoint, const std::vector<std::string>& files, bool barrier) {
    const auto launched = Clock::now();
    if (auto why = raise_descriptor_limit(files.size()); !why.empty()) return fail(why);
    sockaddr_in server{};
    if (!resolve_server(endpoint, server)) return fail("cannot resolve " + endpoint.host);
    const std::size_t k = files.size();
    const std::size_t threads = std::min<std::size_t>(k, std::max(2u, std::thread::hardware_concurrency()));
    const auto slice_begin = [&](std::size_t t) { return t * k / threads; };
    std::vector<Connection> connections(k);
    std::vector<std::string> errors(threads);
    std::vector<SliceResult> results(threads);
    const auto first_of = [&](std::size_t t) { return connections.data() + slice_begin(t); };
    run_threads(threads, [&](std::size_t t) { // untimed: read and encode every file
        for (std::size_t i = slice_begin(t); i < slice_begin(t + 1) && errors[t].empty(); ++i) {
            connections[i].agency = static_cast<std::uint32_t>(i + 1);
            if (auto why = prepare(connections[i], files[i]); !why.empty()) errors[t] = agency_text(connections[i]) + why;
        }
        if (barrier && errors[t].empty()) // untimed too: every connection opened and its OPEN answered
            errors[t] = drive_slice(first_of(t), first_of(t + 1), server, Awaiting::bets, results[t]);
    });
    if (auto why = first_error(errors); !why.empty()) return fail(why);

    const auto started = Clock::now(); // the barrier: every file encoded (and with it, every connection open)
    run_threads(threads, [&](std::size_t t) {
        results[t].error = drive_slice(first_of(t), first_of(t + 1), server, Awaiting::finished, results[t]);
    });
    std::uint64_t bets = 0, winners = 0, reconnects = 0;
    auto last = started;
    for (const auto& result : results) {
        if (!result.error.empty()) return fail(result.error);
        winners += result.winners;
        reconnects += result.reconnects;
        last = std::max(last, result.last_reply);
    }
    for (const auto& c : connections) bets += std::accumulate(c.counts.begin(), c.counts.end(), 0ull);
    std::printf("load | agencies: %zu | bets: %llu | seconds: %.3f | setup_seconds: %.3f | winners: %llu | "
                "reconnects: %llu\n",
                k, static_cast<unsigned long long>(bets), seconds_between(started, last),
                seconds_between(launched, started), static_cast<unsigned long long>(winners),
                static_cast<unsigned long long>(reconnects));
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
    // load --no-barrier: the clock starts before the connections are opened.
    const bool barrier = !(mode == "load" && argc > 2 && std::string(argv[2]) == "--no-barrier");
    const int shift = barrier ? 0 : 1;
    const int first_file = (mode == "essential" ? 4 : 3) + shift;
    const auto endpoint = mode == "load" && argc > 2 + shift ? parse_endpoint(argv[2 + shift]) : std::nullopt;
    const std::vector<std::string> files(argv + std::min(first_file, argc), argv + argc);
    // Agency numbers are 1..65535.
    if ((mode != "essential" && !endpoint) || files.empty() || files.size() > 65535) {
        std::fprintf(stderr, "usage: bench_reference essential <store-out> <log-out> <csv>...\n"
                             "       bench_reference load [--no-barrier] <host:port> <csv>...\n"
                             "       bench_reference draw <store>\n");
        return 2;
    }
    ::signal(SIGPIPE, SIG_IGN);
    set_log_level(LogLevel::error); // BetSource's skipped-row warnings would go to stdout
    return mode == "essential" ? essential(argv[2], argv[3], files) : load(*endpoint, files, barrier);
}
