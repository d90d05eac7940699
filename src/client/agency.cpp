// The agency session (see agency.hpp).
#include "client/agency.hpp"

#include "common/io.hpp"
#include "common/log.hpp"
#include "common/socket.hpp"

#include <poll.h>

#include <algorithm>
#include <chrono>
#include <cstdint>

using wire::ErrorCode;
using wire::ReplyType;

namespace {

constexpr int kMaxResends = 10;            // connections lost in a row before giving up
constexpr int kRetryDelayMs = 100;         // first pause before reconnecting; doubles
constexpr int kMaxRetryDelayMs = 2000;
constexpr std::uint32_t kMaxWinners = 1u << 20; // sanity bound on a WINNERS reply

std::string join(const std::vector<std::string>& items) {
    std::string text;
    for (const std::string& item : items) text.append(text.empty() ? "" : ",").append(item);
    return text;
}

bool is_error(const wire::ReplyHeader& reply, ErrorCode code) {
    return reply.type == ReplyType::error && reply.value == static_cast<std::uint32_t>(code);
}

const char* reply_problem(const wire::ReplyHeader& reply) {
    return reply.type == ReplyType::error ? to_string(static_cast<ErrorCode>(reply.value)) : "unexpected reply";
}

} // namespace

Agency::Agency(const ClientConfig& config, int stop_fd) : config_(config), stop_fd_(stop_fd) {}

int Agency::run(BetSource& source) {
    source_name_ = source.name();
    Step step = resume_source(source);
    if (step == Step::ok) step = send_all_bets(source);
    sending_bets_ = false;
    if (step == Step::ok) step = finish();
    if (step == Step::ok) step = ask_winners();
    if (step == Step::stopped)
        log_action(LogLevel::info, "shutdown", Outcome::in_progress, {{"agencia", config_.id}, {"reason", "signal"}});
    close_socket();
    source.close();
    if (step != Step::ok && step != Step::stopped) {
        log_action(LogLevel::error, "exit", Outcome::fail, {{"agencia", config_.id}});
        return 1;
    }
    log_action(LogLevel::info, "exit", Outcome::success, {{"agencia", config_.id}});
    return 0;
}

// Connects and OPENs the source; the server's RESUME says how many of its
// bets are stored already, and their digest.
Agency::Step Agency::resume_source(BetSource& source) {
    Step step;
    while ((step = reconnect_and_resend()) == Step::dropped) {
        if (++drops_ > kMaxResends) {
            log_action(LogLevel::error, "abrir_fuente", Outcome::fail,
                       {{"agencia", config_.id}, {"fuente", source_name_}, {"error", "too many retries"}});
            return Step::failed;
        }
    }
    drops_ = 0;
    return step == Step::ok ? skip_stored(source, server_stored_, server_digest_) : step;
}

// Reads the first `stored` bets of the file and compares their digest with
// the server's: equal, the upload goes on from there (a re-run sends only
// what is new); different, the file was changed where it was already stored,
// and nothing is sent rather than half a changed file.
Agency::Step Agency::skip_stored(BetSource& source, std::uint64_t stored, wire::Digest digest) {
    wire::Digest ours = 0;
    std::uint64_t read = 0;
    Bet bet;
    while (read < stored && source.next(bet)) ours += wire::bet_hash(bet), ++read;
    if (read < stored || ours != digest) {
        log_action(LogLevel::error, "reanudar_fuente", Outcome::fail,
                   {{"agencia", config_.id}, {"fuente", source_name_}, {"almacenadas", stored},
                    {"error", read < stored ? "the file has fewer bets than the server already stored"
                                            : "the file's first bets differ from those the server stored"}});
        return Step::failed;
    }
    acked_ = sent_ = stored;
    acked_digest_ = ours;
    resumed_ = true;
    if (stored > 0)
        log_action(LogLevel::info, "reanudar_fuente", Outcome::success,
                   {{"agencia", config_.id}, {"fuente", source_name_}, {"almacenadas", stored}});
    return Step::ok;
}

// Keeps up to batch.window BETS frames in flight: the next frames travel
// while the server stores the first, and each ACK (they come back in order)
// retires the oldest.
Agency::Step Agency::send_all_bets(BetSource& source) {
    Bet bet;
    for (bool more = true; more || !in_flight_.empty();) {
        while (more && in_flight_.size() < config_.batch_window) {
            Pending next;
            while (next.bets.size() < config_.batch_max_amount && (more = source.next(bet))) next.bets.push_back(bet);
            if (next.bets.empty()) break;
            if (sent_ + next.bets.size() > UINT32_MAX) { // positions are u32 on the wire
                log_action(LogLevel::error, "apuesta_enviada", Outcome::fail,
                           {{"agencia", config_.id}, {"fuente", source_name_}, {"first", sent_},
                            {"error", "the file holds more bets than the protocol can number (2^32 - 1)"}});
                return Step::failed;
            }
            next.frame = wire::encode_bets_frame(config_.id, static_cast<std::uint32_t>(sent_), next.bets);
            next.hashes.resize(next.bets.size());
            wire::record_hashes(next.frame.data() + wire::kRequestHeaderSize, next.bets.size(), next.hashes.data());
            sent_ += next.bets.size();
            if (const Step step = send(std::move(next)); step != Step::ok) return step;
        }
        if (in_flight_.empty()) break;
        wire::ReplyHeader reply;
        if (const Step step = await_reply(config_.reply_timeout_seconds, reply); step != Step::ok) return step;
        if (const Step step = retire_frame(reply); step != Step::ok) return step;
    }
    if (source.read_error()) {
        log_action(LogLevel::error, "leer_apuestas", Outcome::fail, {{"file", config_.data_file}});
        return Step::failed;
    }
    log_action(LogLevel::info, "apuestas_enviadas", Outcome::success,
               {{"agencia", config_.id}, {"fuente", source_name_}, {"enviadas", acked_ - server_stored_},
                {"ya_almacenadas", server_stored_}, {"filas_omitidas", source.skipped_rows()}});
    return Step::ok;
}

// The oldest frame in flight got `reply`: log its bets as sent, or fail.
// ERROR 8 (another connection took the source over) and ERROR 5 (the draw
// is over) are final: the bets not yet sent cannot be sent by this run.
Agency::Step Agency::retire_frame(const wire::ReplyHeader& reply) {
    const Pending& oldest = in_flight_.front();
    if (reply.type != ReplyType::ack || reply.value != oldest.bets.size()) {
        log_action(LogLevel::error, "apuesta_enviada", Outcome::fail,
                   {{"agencia", config_.id}, {"fuente", source_name_}, {"first", acked_},
                    {"cantidad", oldest.bets.size()}, {"sin_enviar", sent_ - acked_}, {"error", reply_problem(reply)}});
        return Step::failed;
    }
    LogBatch log; // one write per ~4 KiB of lines instead of one per bet
    for (const Bet& sent : oldest.bets)
        log.add(LogLevel::info, "apuesta_enviada", Outcome::success, {{"dni", sent.document}, {"numero", sent.number}});
    acked_ += oldest.bets.size();
    for (std::uint64_t hash : oldest.hashes) acked_digest_ += hash;
    in_flight_.pop_front();
    return Step::ok;
}

Agency::Step Agency::finish() {
    wire::ReplyHeader reply;
    const Step step = ask(wire::encode_request(wire::RequestType::done, config_.id), config_.reply_timeout_seconds, reply);
    if (step != Step::ok) return step;
    if (reply.type == ReplyType::ack) return Step::ok;
    log_action(LogLevel::error, "fin_apuestas", Outcome::fail, {{"agencia", config_.id}, {"error", reply_problem(reply)}});
    return Step::failed;
}

// WINNERS is a long poll: the server answers once every agency is done.
Agency::Step Agency::ask_winners() {
    wire::ReplyHeader reply;
    const Step step = ask(wire::encode_request(wire::RequestType::winners, config_.id),
                          config_.winners_timeout_seconds, reply);
    if (step != Step::ok) return step;
    if (reply.type != ReplyType::winners || reply.value > kMaxWinners) {
        log_action(LogLevel::error, "consulta_ganadores", Outcome::fail,
                   {{"agencia", config_.id}, {"error", reply_problem(reply)}, {"reply_value", reply.value}});
        return Step::failed;
    }
    wire::Bytes documents(reply.value * wire::kDocumentSize);
    const IoStatus status = read_all_watching(socket_.get(), documents.data(), documents.size(), stop_fd_,
                                              config_.reply_timeout_seconds * 1000);
    auto decoded = wire::decode_documents(documents.data(), reply.value);
    if (status != IoStatus::ok || !decoded.ok()) {
        log_action(LogLevel::error, "consulta_ganadores", Outcome::fail,
                   {{"agencia", config_.id}, {"error", status != IoStatus::ok ? to_string(status) : decoded.reason()}});
        return status == IoStatus::aborted ? Step::stopped : Step::failed;
    }
    winners_ = std::move(decoded.value());
    log_action(LogLevel::info, "consulta_ganadores", Outcome::success, {{"cant_ganadores", winners_.size()}});
    if (!winners_.empty()) // an empty `dni:` value could trip a strict log parser
        log_action(LogLevel::info, "ganadores", Outcome::success, {{"agencia", config_.id}, {"dni", join(winners_)}});
    return Step::ok;
}

// One request, one reply (DONE, WINNERS).
Agency::Step Agency::ask(wire::Bytes frame, int timeout_seconds, wire::ReplyHeader& reply) {
    if (const Step step = send(Pending{{}, {}, std::move(frame)}); step != Step::ok) return step;
    const Step step = await_reply(timeout_seconds, reply);
    if (step == Step::ok) in_flight_.pop_front();
    return step;
}

// Queues `request` as in flight and writes it. A failed write is left for
// await_reply() to repair: it reconnects and resends everything in flight.
Agency::Step Agency::send(Pending request) {
    in_flight_.push_back(std::move(request));
    if (!socket_) return Step::ok;
    const Step step = write_frame(in_flight_.back().frame);
    if (step == Step::dropped) close_socket();
    return step == Step::dropped ? Step::ok : step;
}

Agency::Step Agency::write_frame(const wire::Bytes& frame) {
    const IoStatus status = write_all_watching(socket_.get(), frame.data(), frame.size(), stop_fd_,
                                               config_.reply_timeout_seconds * 1000);
    if (status == IoStatus::ok) return Step::ok;
    return status == IoStatus::aborted ? Step::stopped : Step::dropped;
}

// The reply header to the oldest request in flight. A lost connection, a
// server shutting down (ERROR 6) or one that could not write (ERROR 7) cost
// a pause, a reconnect and a resend of every request in flight, unchanged:
// the server acknowledges what it already stored without storing it again.
Agency::Step Agency::await_reply(int timeout_seconds, wire::ReplyHeader& reply) {
    for (;;) {
        Step step = socket_ ? read_reply(timeout_seconds, reply) : Step::dropped;
        if (step != Step::dropped) {
            if (step == Step::ok) drops_ = 0;
            return step;
        }
        if (++drops_ > kMaxResends) {
            log_action(LogLevel::error, "send_request", Outcome::fail, {{"agencia", config_.id}, {"error", "too many retries"}});
            return Step::failed;
        }
        step = reconnect_and_resend();
        if (step == Step::stopped || step == Step::failed) return step;
    }
}

Agency::Step Agency::read_reply(int timeout_seconds, wire::ReplyHeader& reply) {
    std::uint8_t head[wire::kReplyHeaderSize];
    const IoStatus status = read_all_watching(socket_.get(), head, sizeof head, stop_fd_, timeout_seconds * 1000);
    if (status == IoStatus::aborted) return Step::stopped;
    if (status == IoStatus::timeout) { // a bound, not a drop: asking again would only wait again
        log_action(LogLevel::error, "receive_reply", Outcome::fail,
                   {{"agencia", config_.id}, {"error", "no reply in time"}, {"seconds", timeout_seconds}});
        return Step::failed;
    }
    if (status != IoStatus::ok) {
        log_action(LogLevel::warning, "connection_lost", Outcome::in_progress,
                   {{"agencia", config_.id}, {"error", to_string(status)}, {"attempt", drops_ + 1}});
        return Step::dropped;
    }
    const auto decoded = wire::decode_reply_header(head);
    if (!decoded.ok()) {
        log_action(LogLevel::error, "receive_reply", Outcome::fail, {{"error", decoded.reason()}});
        return Step::failed;
    }
    reply = decoded.value();
    if (!is_error(reply, ErrorCode::shutting_down) && !is_error(reply, ErrorCode::storage_failure)) return Step::ok;
    log_action(LogLevel::warning, "connection_lost", Outcome::in_progress,
               {{"agencia", config_.id}, {"error", reply_problem(reply)}, {"attempt", drops_ + 1}});
    return Step::dropped;
}

// A new connection (after a pause that doubles with each loss in a row):
// OPEN the source again while bets are being sent, then write every request
// in flight again, oldest first, so the replies still come back in the
// order of in_flight_.
Agency::Step Agency::reconnect_and_resend() {
    close_socket();
    if (drops_ > 0 && !wait_before_retry(std::min(kRetryDelayMs << std::min(drops_ - 1, 5), kMaxRetryDelayMs)))
        return Step::stopped;
    Step step = connect();
    if (step == Step::ok && sending_bets_) step = open_source();
    for (auto request = in_flight_.begin(); step == Step::ok && request != in_flight_.end(); ++request)
        step = write_frame(request->frame);
    if (step == Step::dropped) close_socket();
    return step;
}

// OPEN, then its RESUME. The first one is kept for skip_stored(); after a
// reconnect the server's position must be one this client can vouch for:
// between what was acknowledged and what was sent, with the same digest.
Agency::Step Agency::open_source() {
    Step step = write_frame(wire::encode_open_frame(config_.id, source_name_));
    wire::ReplyHeader reply;
    if (step == Step::ok) step = read_reply(config_.reply_timeout_seconds, reply);
    if (step != Step::ok) return step;
    std::uint8_t digest_bytes[wire::kDigestSize];
    if (reply.type != ReplyType::resume) {
        log_action(LogLevel::error, "abrir_fuente", Outcome::fail,
                   {{"agencia", config_.id}, {"fuente", source_name_}, {"error", reply_problem(reply)}});
        return Step::failed;
    }
    const IoStatus status = read_all_watching(socket_.get(), digest_bytes, sizeof digest_bytes, stop_fd_,
                                              config_.reply_timeout_seconds * 1000);
    if (status != IoStatus::ok) return status == IoStatus::aborted ? Step::stopped : Step::dropped;
    const wire::Digest digest = wire::get_u64(digest_bytes);
    if (!resumed_) {
        server_stored_ = reply.value;
        server_digest_ = digest;
        return Step::ok;
    }
    if (matches_in_flight(reply.value, digest)) return Step::ok;
    log_action(LogLevel::error, "reanudar_fuente", Outcome::fail,
               {{"agencia", config_.id}, {"fuente", source_name_}, {"almacenadas", reply.value},
                {"error", "the server holds bets of this source that this run did not send"}});
    return Step::failed;
}

bool Agency::matches_in_flight(std::uint64_t stored, wire::Digest digest) const {
    if (stored < acked_ || stored > sent_) return false;
    wire::Digest expected = acked_digest_;
    std::uint64_t position = acked_;
    for (const Pending& request : in_flight_)
        for (std::size_t i = 0; i < request.hashes.size() && position < stored; ++i, ++position)
            expected += request.hashes[i];
    return expected == digest;
}

// Connects, retrying with a growing pause for up to connect_retry_seconds
// (the server may not be up yet).
Agency::Step Agency::connect() {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(config_.connect_retry_seconds);
    for (int delay = kRetryDelayMs;; delay = std::min(delay * 2, kMaxRetryDelayMs)) {
        std::string error;
        socket_ = connect_tcp(config_.server, stop_fd_, error);
        if (socket_) {
            set_no_delay(socket_.get());
            log_action(LogLevel::info, "connect", Outcome::success, {{"server", config_.server_address}});
            return Step::ok;
        }
        if (stop_requested()) return Step::stopped;
        if (std::chrono::steady_clock::now() >= deadline) {
            log_action(LogLevel::error, "connect", Outcome::fail, {{"server", config_.server_address}, {"error", error}});
            return Step::failed;
        }
        log_action(LogLevel::debug, "connect", Outcome::in_progress, {{"server", config_.server_address}, {"error", error}});
        if (!wait_before_retry(delay)) return Step::stopped;
    }
}

bool Agency::stop_requested() const {
    pollfd stop{stop_fd_, POLLIN, 0};
    return ::poll(&stop, 1, 0) > 0;
}

// Sleeps, but wakes at once for SIGTERM. False when stopped.
bool Agency::wait_before_retry(int milliseconds) {
    pollfd stop{stop_fd_, POLLIN, 0};
    int ready;
    while ((ready = ::poll(&stop, 1, milliseconds)) < 0 && errno == EINTR) {}
    return ready == 0;
}

void Agency::close_socket() {
    if (!socket_) return;
    socket_.reset();
    log_action(LogLevel::info, "close_socket", Outcome::success, {{"server", config_.server_address}});
}
