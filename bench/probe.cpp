// bench_probe: a load client for `make bench` that measures what bin/client
// does not log, the round-trip time of each BETS batch.
//
//   bench_probe <host:port> <agency> <csv file> [batch size]
//
// It reads the agency file with the client's own CSV reader (BetSource: same
// validation, same skipped rows, same source name), encodes every BETS frame
// up front with the project's codec (frame i at position i x batch size),
// OPENs the source like bin/client (protocol v2: OPEN, then RESUME with the
// stored count and digest; the probe needs a fresh source, 0 stored), then
// for each batch takes steady_clock just before the write(2) of the frame and
// just after the 6-byte reply has been read (write, poll, read: the same
// calls bin/client makes per batch). Then DONE and WINNERS, like an agency:
// the server can run its draw, and the probe exits only once the draw is
// over (the draw runs between poll rounds, and a SIGTERM sent to the server
// before it ends would cut it short). It logs nothing per bet, so it loads
// the machine a little less than a real client.
//
// Prints one line, `key: value` fields separated by `|`:
//   probe | agency: N | batches: B | bets: X | p50_us: .. | p90_us: .. |
//   p99_us: .. | max_us: .. | mean_us: .. | seconds: ..
// Exit status 0 only if the source was fresh, every batch was ACKed with its
// own count, DONE was ACKed and WINNERS answered; 1 otherwise (with the reason
// on stderr); 2 on bad arguments.
#include "client/bet_source.hpp"
#include "common/io.hpp"
#include "common/log.hpp"
#include "common/protocol.hpp"
#include "common/socket.hpp"

#include <signal.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;
constexpr int kReplyTimeoutMs = 30000;
constexpr int kConnectDeadlineSeconds = 10;

int fail(const std::string& why) {
    std::fprintf(stderr, "bench_probe: %s\n", why.c_str());
    return 1;
}

// Nearest-rank percentile of sorted samples.
double percentile(const std::vector<double>& sorted, double p) {
    if (sorted.empty()) return 0;
    auto rank = static_cast<std::size_t>(std::ceil(p / 100.0 * static_cast<double>(sorted.size())));
    return sorted[std::min(sorted.size(), std::max<std::size_t>(rank, 1)) - 1];
}

// One request/reply exchange; false with `why` set on any failure.
bool exchange(int fd, const wire::Bytes& frame, wire::ReplyHeader& reply, std::string& why) {
    std::uint8_t head[wire::kReplyHeaderSize];
    IoStatus status = write_all(fd, frame.data(), frame.size());
    if (status == IoStatus::ok) status = read_all_watching(fd, head, sizeof head, -1, kReplyTimeoutMs);
    if (status != IoStatus::ok) return why = to_string(status), false;
    const auto decoded = wire::decode_reply_header(head);
    if (!decoded.ok()) return why = std::string(decoded.reason()), false;
    reply = decoded.value();
    return true;
}

// OPEN the source; false with `why` set unless the server answers RESUME 0
// (digest 0): the timings must be of bets stored now, not of duplicates.
bool open_fresh_source(int fd, std::uint32_t agency, const std::string& name, std::string& why) {
    wire::ReplyHeader reply;
    if (!exchange(fd, wire::encode_open_frame(agency, name), reply, why)) return false;
    if (reply.type != wire::ReplyType::resume)
        return why = "OPEN not answered with RESUME (reply type " + std::to_string(static_cast<int>(reply.type)) +
                     ", value " + std::to_string(reply.value) + ")",
               false;
    std::uint8_t digest[wire::kDigestSize];
    const IoStatus status = read_all_watching(fd, digest, sizeof digest, -1, kReplyTimeoutMs);
    if (status != IoStatus::ok) return why = to_string(status), false;
    if (reply.value != 0 || wire::get_u64(digest) != 0)
        return why = "source " + name + " already holds " + std::to_string(reply.value) + " bets: use a fresh store",
               false;
    return true;
}

} // namespace

int main(int argc, char** argv) {
    if (argc < 4 || argc > 5) {
        std::fprintf(stderr, "usage: %s <host:port> <agency> <csv file> [batch size]\n", argv[0]);
        return 2;
    }
    const auto endpoint = parse_endpoint(argv[1]);
    const long agency = std::strtol(argv[2], nullptr, 10);
    const long batch_size = argc == 5 ? std::strtol(argv[4], nullptr, 10) : long(wire::kMaxBetsPerFrame);
    if (!endpoint || agency < 1 || agency > 65535 || batch_size < 1 ||
        batch_size > long(wire::kMaxBetsPerFrame)) {
        std::fprintf(stderr, "bench_probe: bad arguments\n");
        return 2;
    }
    ::signal(SIGPIPE, SIG_IGN);
    set_log_level(LogLevel::warning); // BetSource reports skipped rows as warnings

    auto source = BetSource::open(argv[3], static_cast<std::uint32_t>(agency));
    if (!source) return fail(std::string("cannot open ") + argv[3]);
    std::vector<wire::Bytes> frames;
    std::vector<std::size_t> counts;
    std::vector<Bet> bets;
    std::uint64_t total_bets = 0;
    const auto add_frame = [&] {
        frames.push_back(wire::encode_bets_frame(agency, static_cast<std::uint32_t>(total_bets), bets));
        counts.push_back(bets.size());
        total_bets += bets.size();
        bets.clear();
    };
    for (Bet bet; source->next(bet);) {
        bets.push_back(bet);
        if (bets.size() == static_cast<std::size_t>(batch_size)) add_frame();
    }
    if (!bets.empty()) add_frame();
    if (source->read_error()) return fail(std::string("read error on ") + argv[3]);

    Fd socket;
    const auto connect_deadline = Clock::now() + std::chrono::seconds(kConnectDeadlineSeconds);
    for (std::string error;;) {
        socket = connect_tcp(*endpoint, -1, error);
        if (socket) break;
        if (Clock::now() >= connect_deadline) return fail("connect: " + error);
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    set_no_delay(socket.get());

    std::string why;
    if (!open_fresh_source(socket.get(), static_cast<std::uint32_t>(agency), source->name(), why))
        return fail("OPEN: " + why);
    std::vector<double> micros;
    micros.reserve(frames.size());
    wire::ReplyHeader reply;
    const auto started = Clock::now();
    for (std::size_t i = 0; i < frames.size(); ++i) {
        const auto before = Clock::now();
        if (!exchange(socket.get(), frames[i], reply, why)) return fail("batch " + std::to_string(i + 1) + ": " + why);
        const auto after = Clock::now();
        if (reply.type != wire::ReplyType::ack || reply.value != counts[i])
            return fail("batch " + std::to_string(i + 1) + ": not ACKed with its count (reply type " +
                        std::to_string(static_cast<int>(reply.type)) + ", value " + std::to_string(reply.value) + ")");
        micros.push_back(std::chrono::duration<double, std::micro>(after - before).count());
    }
    const double seconds = std::chrono::duration<double>(Clock::now() - started).count();
    if (!exchange(socket.get(), wire::encode_request(wire::RequestType::done, agency), reply, why))
        return fail("DONE: " + why);
    if (reply.type != wire::ReplyType::ack) return fail("DONE not ACKed");
    if (!exchange(socket.get(), wire::encode_request(wire::RequestType::winners, agency), reply, why))
        return fail("WINNERS: " + why);
    if (reply.type != wire::ReplyType::winners) return fail("WINNERS not answered with WINNERS");
    std::vector<std::uint8_t> documents(std::size_t{reply.value} * wire::kDocumentSize);
    if (read_all_watching(socket.get(), documents.data(), documents.size(), -1, kReplyTimeoutMs) != IoStatus::ok)
        return fail("WINNERS: documents cut short");

    double sum = 0;
    for (double value : micros) sum += value;
    std::vector<double> sorted = micros;
    std::sort(sorted.begin(), sorted.end());
    std::printf("probe | agency: %ld | batches: %zu | bets: %llu | p50_us: %.0f | p90_us: %.0f | p99_us: %.0f"
                " | max_us: %.0f | mean_us: %.0f | seconds: %.3f\n",
                agency, micros.size(), static_cast<unsigned long long>(total_bets), percentile(sorted, 50),
                percentile(sorted, 90), percentile(sorted, 99), sorted.empty() ? 0.0 : sorted.back(),
                micros.empty() ? 0.0 : sum / static_cast<double>(micros.size()), seconds);
    return 0;
}
