// The agency session (see agency.hpp).
#include "client/agency.hpp"

#include "common/io.hpp"
#include "common/log.hpp"
#include "common/socket.hpp"

#include <poll.h>

#include <chrono>

using wire::ReplyType;

namespace {

constexpr int kMaxResends = 10;            // consecutive drops of one request
constexpr int kRetryDelayMs = 100;         // first pause between connects; doubles
constexpr int kMaxRetryDelayMs = 2000;
constexpr std::uint32_t kMaxWinners = 1u << 20; // sanity bound on a WINNERS reply

std::string join(const std::vector<std::string>& items) {
    std::string text;
    for (const std::string& item : items) text.append(text.empty() ? "" : ",").append(item);
    return text;
}

} // namespace

Agency::Agency(const ClientConfig& config, int stop_fd) : config_(config), stop_fd_(stop_fd) {}

int Agency::run(BetSource& source) {
    Step step = send_all_bets(source);
    if (step == Step::ok) step = finish();
    if (step == Step::ok) step = ask_winners();
    if (step == Step::stopped)
        log_action(LogLevel::info, "shutdown", Outcome::in_progress, {{"agencia", config_.id}, {"reason", "signal"}});
    close_socket();
    source.close();
    if (step == Step::failed) {
        log_action(LogLevel::error, "exit", Outcome::fail, {{"agencia", config_.id}});
        return 1;
    }
    log_action(LogLevel::info, "exit", Outcome::success, {{"agencia", config_.id}});
    return 0;
}

// Keeps up to batch.window BETS frames in flight: the next batches travel
// while the server stores the first, and each ACK (they come back in order)
// retires the oldest.
Agency::Step Agency::send_all_bets(BetSource& source) {
    std::uint32_t batch = 0;
    Bet bet;
    for (bool more = true; more || !in_flight_.empty();) {
        while (more && in_flight_.size() < config_.batch_window) {
            Pending next{++batch, {}, {}};
            while (next.bets.size() < config_.batch_max_amount && (more = source.next(bet))) next.bets.push_back(bet);
            if (next.bets.empty()) { --batch; break; }
            next.frame = wire::encode_bets_frame(config_.id, next.batch, next.bets);
            if (const Step step = send(std::move(next)); step != Step::ok) return step;
        }
        if (in_flight_.empty()) break;
        wire::ReplyHeader reply;
        if (const Step step = await_reply(config_.reply_timeout_seconds, reply); step != Step::ok) return step;
        if (const Step step = retire_batch(reply); step != Step::ok) return step;
    }
    if (source.read_error()) {
        log_action(LogLevel::error, "leer_apuestas", Outcome::fail, {{"file", config_.data_file}});
        return Step::failed;
    }
    log_action(LogLevel::info, "apuestas_enviadas", Outcome::success,
               {{"agencia", config_.id}, {"lotes", batch}, {"filas_omitidas", source.skipped_rows()}});
    return Step::ok;
}

// The oldest batch in flight got `reply`: log its bets as sent, or fail.
Agency::Step Agency::retire_batch(const wire::ReplyHeader& reply) {
    const Pending& oldest = in_flight_.front();
    if (reply.type != ReplyType::ack || reply.value != oldest.bets.size()) {
        const bool error = reply.type == ReplyType::error;
        log_action(LogLevel::error, "apuesta_enviada", Outcome::fail,
                   {{"lote", oldest.batch}, {"cantidad", oldest.bets.size()},
                    {"error", error ? to_string(static_cast<wire::ErrorCode>(reply.value)) : "unexpected reply"}});
        return Step::failed;
    }
    LogBatch log; // one write per ~4 KiB of lines instead of one per bet
    for (const Bet& sent : oldest.bets)
        log.add(LogLevel::info, "apuesta_enviada", Outcome::success, {{"dni", sent.document}, {"numero", sent.number}});
    in_flight_.pop_front();
    return Step::ok;
}

Agency::Step Agency::finish() {
    wire::ReplyHeader reply;
    const Step step = ask(wire::encode_request(wire::RequestType::done, config_.id), config_.reply_timeout_seconds, reply);
    if (step != Step::ok) return step;
    if (reply.type == ReplyType::ack) return Step::ok;
    log_action(LogLevel::error, "fin_apuestas", Outcome::fail, {{"agencia", config_.id}, {"reply_value", reply.value}});
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
                   {{"agencia", config_.id}, {"reply_type", static_cast<int>(reply.type)}, {"reply_value", reply.value}});
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
    if (const Step step = send(Pending{0, {}, std::move(frame)}); step != Step::ok) return step;
    const Step step = await_reply(timeout_seconds, reply);
    if (step == Step::ok) in_flight_.pop_front();
    return step;
}

// Queues `request` as in flight and writes it; a failed write is repaired by
// reconnecting, which resends everything in flight.
Agency::Step Agency::send(Pending request) {
    in_flight_.push_back(std::move(request));
    if (!socket_) return reconnect_and_resend();
    const Step step = write_frame(in_flight_.back().frame);
    return step == Step::failed ? reconnect_and_resend() : step;
}

// failed here means "the connection is broken", which callers repair.
Agency::Step Agency::write_frame(const wire::Bytes& frame) {
    const IoStatus status = write_all_watching(socket_.get(), frame.data(), frame.size(), stop_fd_,
                                               config_.reply_timeout_seconds * 1000);
    if (status == IoStatus::ok) return Step::ok;
    return status == IoStatus::aborted ? Step::stopped : Step::failed;
}

// The reply header to the oldest request in flight. A dropped connection, or
// a server that says it is shutting down, costs a reconnect and a resend of
// every request in flight, with the same batch numbers: the server
// acknowledges batches it already has without storing them again.
Agency::Step Agency::await_reply(int timeout_seconds, wire::ReplyHeader& reply) {
    for (int attempt = 1;; ++attempt) {
        std::uint8_t head[wire::kReplyHeaderSize];
        IoStatus status = read_all_watching(socket_.get(), head, sizeof head, stop_fd_, timeout_seconds * 1000);
        if (status == IoStatus::aborted) return Step::stopped;
        if (status == IoStatus::timeout) { // a bound, not a drop: asking again would only wait again
            log_action(LogLevel::error, "receive_reply", Outcome::fail,
                       {{"agencia", config_.id}, {"error", "no reply in time"}, {"seconds", timeout_seconds}});
            return Step::failed;
        }
        if (status == IoStatus::ok) {
            const auto decoded = wire::decode_reply_header(head);
            if (!decoded.ok()) {
                log_action(LogLevel::error, "receive_reply", Outcome::fail, {{"error", decoded.reason()}});
                return Step::failed;
            }
            const bool restarting = decoded.value().type == ReplyType::error &&
                                    decoded.value().value == static_cast<std::uint32_t>(wire::ErrorCode::shutting_down);
            if (!restarting) return reply = decoded.value(), Step::ok;
            status = IoStatus::closed; // the server is going away: as good as a drop
        }
        log_action(LogLevel::warning, "connection_lost", Outcome::in_progress,
                   {{"agencia", config_.id}, {"error", to_string(status)}, {"attempt", attempt}});
        if (attempt > kMaxResends) {
            log_action(LogLevel::error, "send_request", Outcome::fail, {{"agencia", config_.id}, {"error", "too many retries"}});
            return Step::failed;
        }
        if (const Step step = reconnect_and_resend(); step != Step::ok) return step;
    }
}

// Opens a new connection (connect() itself retries for connect_retry_seconds)
// and writes every request in flight again, oldest first, so the replies
// still come back in the order of in_flight_. Gives up after kMaxResends.
Agency::Step Agency::reconnect_and_resend() {
    for (int attempt = 1; attempt <= kMaxResends; ++attempt) {
        if (socket_) {
            close_socket();
            if (!wait_before_retry(kRetryDelayMs)) return Step::stopped;
        }
        if (const Step step = connect(); step != Step::ok) return step;
        Step step = Step::ok;
        for (auto request = in_flight_.begin(); step == Step::ok && request != in_flight_.end(); ++request)
            step = write_frame(request->frame);
        if (step != Step::failed) return step;
    }
    log_action(LogLevel::error, "send_request", Outcome::fail, {{"agencia", config_.id}, {"error", "too many retries"}});
    return Step::failed;
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
