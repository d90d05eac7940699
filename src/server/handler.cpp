// Connection handler process (see handler.hpp). The data path reads top to
// bottom: socket bytes -> frame header -> bets -> store lines -> coordinator.
#include "server/handler.hpp"

#include "common/bet_store.hpp"
#include "common/log.hpp"
#include "common/socket.hpp"
#include "server/channel.hpp"

#include <poll.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>

using wire::ErrorCode;
using wire::RequestType;

namespace {

constexpr int kGoodbyeTimeoutMs = 500;      // for the last ERROR 6, within the shutdown deadline
constexpr int kLingerMs = 500;              // reading what a client sent after our final ERROR
constexpr std::size_t kLingerBytes = 64 * 1024;
constexpr std::size_t kInputBytes = 64 * 1024;      // the client's bytes read ahead: a few frames
constexpr std::size_t kMaxFramesPerRound = 16;      // BETS frames sent to the coordinator at once (full
                                                    // 8 KiB frames stop at what the buffer holds, ~8)

} // namespace

Handler::Handler(HandlerSetup setup) : setup_(std::move(setup)) {
    // Non-blocking, and every read and write polls the coordinator's pipe
    // too: neither a silent client nor one that stops reading can keep this
    // process alive once the coordinator has gone.
    set_non_blocking(setup_.client.get());
    set_no_delay(setup_.client.get());
    // The first frame, read by the acceptor before it forked this process.
    const std::string& first = setup_.first_bytes;
    if (!first.empty()) {
        grow_input(std::max(first.size(), kInputBytes));
        std::memcpy(input_.get(), first.data(), first.size());
        input_end_ = first.size();
        std::string().swap(setup_.first_bytes);
    }
}

int Handler::run() {
    while (serve_frame() == Next::keep_going) {}
    if (handed_over_) { // the coordinator holds the connection now; this copy goes quietly
        setup_.client.reset();
        return 0;
    }
    if (linger_) close_lingering(setup_.client, kLingerMs, kLingerBytes);
    setup_.client.reset();
    log_action(LogLevel::info, "close_socket", Outcome::success,
               {{"peer", setup_.peer}, {"agencia", bound_agency_}});
    return 0;
}

// One request, start to end: header, payload, then the on_* method of its
// type. Next::close ends the connection (client gone or idle, malformed
// frame, coordinator gone).
Handler::Next Handler::serve_frame() {
    frame_started_ = false;
    if (input_end_ > input_begin_) start_frame(); // its first bytes are here already
    std::uint8_t head[wire::kRequestHeaderSize];
    const IoStatus status = read_client(head, sizeof head);
    if (status != IoStatus::ok) return report_io(status, "read_header");
    const auto header = wire::decode_request_header(head);
    if (!header.ok()) {
        log_action(LogLevel::warning, "receive_frame", Outcome::fail,
                   {{"peer", setup_.peer}, {"error", header.reason()}});
        return send_and_close(ErrorCode::malformed_frame); // where would the next frame start?
    }
    std::vector<std::uint8_t> payload;
    if (read_payload(header.value(), payload) == Next::close) return Next::close;
    frame_started_ = false; // whole: a timeout from here on is not the frame's
    switch (header.value().type) {
    case RequestType::open: return on_open(header.value(), payload);
    case RequestType::bets: return on_bets(header.value(), payload);
    case RequestType::done: return on_done(header.value());
    case RequestType::winners: return on_winners(header.value());
    case RequestType::echo: return on_echo(header.value(), payload);
    }
    return Next::close;
}

Handler::Next Handler::read_payload(const wire::RequestHeader& header, std::vector<std::uint8_t>& payload) {
    payload.resize(wire::payload_size(header));
    if (payload.empty()) return Next::keep_going;
    const IoStatus status = read_client(payload.data(), payload.size());
    if (status == IoStatus::ok) return Next::keep_going;
    // EOF inside a frame is a truncated frame, not a clean goodbye.
    return report_io(status == IoStatus::closed ? IoStatus::truncated : status, "read_payload");
}

// `size` bytes of the client's stream. Whatever else has arrived is kept
// for the next call: a client with frames in flight often has the next ones
// here already, and they join the round (see on_bets).
IoStatus Handler::read_client(std::uint8_t* out, std::size_t size) {
    const std::size_t have = input_end_ - input_begin_;
    if (have < size) {
        if (input_capacity_ < size) grow_input(std::max(size, kInputBytes));
        std::memmove(input_.get(), input_.get() + input_begin_, have);
        input_begin_ = 0;
        input_end_ = have;
        const IoStatus status = fill_input(size);
        if (status == IoStatus::closed && input_end_ > 0) return IoStatus::truncated;
        if (status != IoStatus::ok) return status;
    }
    std::memcpy(out, input_.get() + input_begin_, size);
    input_begin_ += size;
    return IoStatus::ok;
}

// Reads until `size` bytes are buffered, taking whatever more has come. The
// wait for the first byte of a frame is the idle timeout; from that byte
// on, the whole frame must be here within the frame timeout, however
// slowly it trickles in (each byte does not restart the clock).
IoStatus Handler::fill_input(std::size_t size) {
    while (input_end_ < size) {
        const int wait_ms = frame_started_ ? ms_until(frame_deadline_) : setup_.idle_timeout_ms;
        if (wait_ms == 0) return IoStatus::timeout;
        std::size_t got = 0;
        const IoStatus status = read_some_watching(setup_.client.get(), input_.get() + input_end_, 1,
                                                   input_capacity_ - input_end_, got, setup_.from_coordinator.get(),
                                                   wait_ms);
        input_end_ += got;
        if (got > 0 && !frame_started_) start_frame();
        if (status != IoStatus::ok) return status;
    }
    return IoStatus::ok;
}

void Handler::start_frame() {
    frame_started_ = true;
    frame_deadline_ = std::chrono::steady_clock::now() + std::chrono::milliseconds(setup_.frame_timeout_ms);
}

// Not zero-filled: the pages are touched only as bytes arrive, so a handler
// with small frames stays small.
void Handler::grow_input(std::size_t capacity) {
    std::unique_ptr<std::uint8_t[]> bigger(new std::uint8_t[capacity]);
    if (input_end_ > input_begin_) std::memcpy(bigger.get(), input_.get() + input_begin_, input_end_ - input_begin_);
    input_end_ -= input_begin_;
    input_begin_ = 0;
    input_ = std::move(bigger);
    input_capacity_ = capacity;
}

// True when a whole BETS frame is already buffered: reading it cannot block.
bool Handler::bets_frame_buffered() const {
    const std::size_t have = input_end_ - input_begin_;
    if (have < wire::kRequestHeaderSize) return false;
    const auto header = wire::decode_request_header(input_.get() + input_begin_);
    return header.ok() && header.value().type == RequestType::bets &&
           have >= wire::kRequestHeaderSize + wire::payload_size(header.value());
}

// OPEN names the source the next BETS feed; the coordinator answers RESUME
// with what it already holds of it. Whatever the answer, the source open
// before is closed: BETS after a refused OPEN were meant for the source it
// named, and must not count against the one before (CONTRACT.md §5).
Handler::Next Handler::on_open(const wire::RequestHeader& header, const std::vector<std::uint8_t>& payload) {
    source_.reset();
    source_name_.clear();
    if (!agency_allowed(header)) return refuse(ErrorCode::bad_agency, header);
    const std::string_view name(reinterpret_cast<const char*>(payload.data()), payload.size());
    if (!wire::is_valid_source_name(name)) {
        log_action(LogLevel::warning, "abrir_fuente", Outcome::fail,
                   {{"peer", setup_.peer}, {"agencia", header.agency}, {"error", "bad source name"}});
        return send_and_close(ErrorCode::malformed_frame);
    }
    request_.header = header;
    request_.name.assign(name);
    ipc::Reply reply;
    if (!ask_coordinator(reply)) return Next::close;
    const auto answer = wire::decode_reply_header(reply.frame.data()).value();
    if (answer.type == wire::ReplyType::resume) {
        source_ = reply.source;
        source_name_.assign(name);
        log_action(LogLevel::info, "abrir_fuente", Outcome::success,
                   {{"agencia", header.agency}, {"fuente", source_name_}, {"almacenadas", answer.value}});
    } else {
        log_action(LogLevel::warning, "abrir_fuente", Outcome::fail,
                   {{"agencia", header.agency}, {"fuente", name},
                    {"error", to_string(static_cast<ErrorCode>(answer.value))}});
    }
    return send(reply.frame);
}

// Decoding, validation and hashing happen here, in parallel across handlers:
// an invalid frame is answered ERROR 2 without reaching the coordinator, and
// a valid one reaches it as store lines with one hash per bet. The BETS
// frames already buffered behind this one (a client keeps several in
// flight) join it in one round: one write to the coordinator for all of
// them, their replies read in order, and one write of all the ACKs.
Handler::Next Handler::on_bets(const wire::RequestHeader& header, const std::vector<std::uint8_t>& payload) {
    if (!source_) {
        log_action(LogLevel::warning, "apuesta_recibida", Outcome::fail,
                   {{"peer", setup_.peer}, {"cantidad", header.count}, {"agencia", header.agency},
                    {"error", "BETS before OPEN"}});
        return send_and_close(ErrorCode::malformed_frame);
    }
    BetsRound round;
    stage_bets(header, payload, round);
    std::vector<std::uint8_t> next_payload;
    while (round.frames.size() < kMaxFramesPerRound && bets_frame_buffered()) {
        std::uint8_t head[wire::kRequestHeaderSize];
        (void)read_client(head, sizeof head); // buffered: cannot block or fail
        const auto next = wire::decode_request_header(head).value();
        (void)read_payload(next, next_payload);
        stage_bets(next, next_payload, round);
    }
    return finish_round(round);
}

// One frame of the round: its request to the coordinator, or its own reply
// when it never gets that far (wrong agency, invalid bet).
void Handler::stage_bets(const wire::RequestHeader& header, const std::vector<std::uint8_t>& payload,
                         BetsRound& round) {
    if (!agency_allowed(header)) {
        log_refusal(ErrorCode::bad_agency, header);
        round.frames.push_back({header, {}, wire::encode_error(ErrorCode::bad_agency)});
        return;
    }
    auto bets = wire::decode_bets(header, payload.data());
    if (!bets.ok()) {
        log_action(LogLevel::warning, "apuesta_recibida", Outcome::fail,
                   {{"cantidad", header.count}, {"agencia", header.agency}, {"fuente", source_name_},
                    {"first", header.first}, {"error", bets.reason()}});
        round.frames.push_back({header, {}, wire::encode_error(bets.error())});
        return;
    }
    request_.header = header;
    request_.source = *source_;
    request_.hashes.resize(header.count);
    wire::record_hashes(payload.data(), header.count, request_.hashes.data());
    request_.lines.clear();
    for (const Bet& bet : bets.value()) append_store_line(request_.lines, bet);
    ipc::append_request(round.requests, request_);
    round.frames.push_back({header, std::move(bets).value(), {}});
}

Handler::Next Handler::finish_round(BetsRound& round) {
    if (!round.requests.empty()) {
        const IoStatus status = write_all(setup_.to_coordinator.get(), round.requests);
        if (status != IoStatus::ok) return coordinator_gone(status), Next::close;
    }
    wire::Bytes replies;
    ipc::Reply reply;
    for (const StagedFrame& frame : round.frames) {
        if (!frame.reply.empty()) {
            replies.insert(replies.end(), frame.reply.begin(), frame.reply.end());
            continue;
        }
        const IoStatus status = ipc::receive_reply(setup_.from_coordinator.get(), reply);
        if (status != IoStatus::ok) return coordinator_gone(status), Next::close;
        log_bets_reply(frame.header, frame.bets, reply);
        replies.insert(replies.end(), reply.frame.begin(), reply.frame.end());
    }
    return send(replies);
}

// All lines of one frame leave in as few writes as possible, and before the
// ACK: the client cannot say DONE before its bets are logged. Only the bets
// stored now are logged as stored: a straddling frame's head was stored before.
void Handler::log_bets_reply(const wire::RequestHeader& header, const std::vector<Bet>& bets, const ipc::Reply& reply) {
    LogBatch log;
    const auto answer = wire::decode_reply_header(reply.frame.data()).value();
    const std::size_t repeated = header.count - reply.stored_now;
    if (answer.type == wire::ReplyType::ack && reply.stored_now > 0) {
        for (std::size_t i = repeated; i < bets.size(); ++i)
            log.add(LogLevel::info, "apuesta_almacenada", Outcome::success,
                    {{"dni", bets[i].document}, {"numero", bets[i].number}});
        log.add(LogLevel::info, "apuesta_recibida", Outcome::success,
                {{"cantidad", reply.stored_now}, {"agencia", header.agency}, {"fuente", source_name_},
                 {"first", header.first + repeated}, {"repetidas", repeated}});
    } else if (answer.type == wire::ReplyType::ack) {
        log.add(LogLevel::info, "apuestas_repetidas", Outcome::success,
                {{"cantidad", header.count}, {"agencia", header.agency}, {"fuente", source_name_},
                 {"first", header.first}});
    } else {
        log.add(LogLevel::warning, "apuesta_recibida", Outcome::fail,
                {{"cantidad", header.count}, {"agencia", header.agency}, {"fuente", source_name_},
                 {"first", header.first}, {"error", to_string(static_cast<ErrorCode>(answer.value))}});
    }
}

// A WINNERS may wait until the slowest agency is done, and a process per
// waiting agency would make the agencies that wait for the draw starve the
// ones that still send bets. So the connection goes to the coordinator,
// which answers it once the draw is done (at once if it is), and this
// handler ends: WINNERS is the last request of a connection.
Handler::Next Handler::on_winners(const wire::RequestHeader& header) {
    if (!agency_allowed(header)) return refuse(ErrorCode::bad_agency, header);
    if (!send_waiting_agency(setup_.channel.get(), header.agency, setup_.peer, setup_.client.get())) {
        if (errno == EPIPE || errno == ECONNRESET) // the coordinator stopped taking connections
            log_action(LogLevel::info, "request_interrupted", Outcome::in_progress,
                       {{"agencia", header.agency}, {"request", "WINNERS"}, {"reason", "shutting down"}});
        else
            log_action(LogLevel::warning, "hand_over", Outcome::fail,
                       {{"agencia", header.agency}, {"peer", setup_.peer}, {"error", errno_text("sendmsg")}});
        return send_and_close(ErrorCode::shutting_down); // the client comes back and asks again
    }
    log_action(LogLevel::debug, "hand_over", Outcome::success, {{"peer", setup_.peer}, {"agencia", header.agency}});
    handed_over_ = true;
    return Next::close;
}

Handler::Next Handler::on_done(const wire::RequestHeader& header) {
    if (!agency_allowed(header)) return refuse(ErrorCode::bad_agency, header);
    request_.header = header;
    ipc::Reply reply;
    if (!ask_coordinator(reply)) return Next::close;
    const auto answer = wire::decode_reply_header(reply.frame.data()).value();
    if (answer.type == wire::ReplyType::error &&
             static_cast<ErrorCode>(answer.value) == ErrorCode::shutting_down)
        // A graceful stop is not a failure: the client reconnects to the restarted server.
        log_action(LogLevel::info, "request_interrupted", Outcome::in_progress,
                   {{"agencia", header.agency}, {"request", to_string(header.type)}, {"reason", "shutting down"}});
    else if (answer.type == wire::ReplyType::error)
        log_action(LogLevel::warning, to_string(header.type), Outcome::fail,
                   {{"agencia", header.agency}, {"error", to_string(static_cast<ErrorCode>(answer.value))}});
    return send(reply.frame);
}

// ECHO sends the request frame back byte for byte, without the coordinator:
// the health probe works even with SERVER_AGENCIES=0.
Handler::Next Handler::on_echo(const wire::RequestHeader& header, const std::vector<std::uint8_t>& payload) {
    const auto head = wire::encode_request_header(header);
    wire::Bytes frame(head.begin(), head.end());
    frame.insert(frame.end(), payload.begin(), payload.end());
    log_action(LogLevel::debug, "echo", Outcome::success, {{"peer", setup_.peer}, {"bytes", frame.size()}});
    return send(frame);
}

// Agencies are 1..SERVER_AGENCIES, and a connection keeps the first it names.
bool Handler::agency_allowed(const wire::RequestHeader& header) {
    if (header.agency == 0 || header.agency > setup_.agencies) return false;
    if (bound_agency_ == 0) bound_agency_ = header.agency;
    return header.agency == bound_agency_;
}

bool Handler::ask_coordinator(ipc::Reply& reply) {
    IoStatus status = ipc::send_request(setup_.to_coordinator.get(), request_);
    if (status == IoStatus::ok) status = ipc::receive_reply(setup_.from_coordinator.get(), reply);
    if (status == IoStatus::ok) return true;
    coordinator_gone(status);
    return false;
}

// The coordinator is gone: shutting down (or dead). Tell the client so,
// without watching the (closed) pipe and without waiting long.
void Handler::coordinator_gone(IoStatus status) {
    log_action(LogLevel::warning, "coordinator", Outcome::fail,
               {{"peer", setup_.peer}, {"error", to_string(status)}});
    const wire::Bytes goodbye = wire::encode_error(ErrorCode::shutting_down);
    linger_ = write_all_watching(setup_.client.get(), goodbye.data(), goodbye.size(), -1, kGoodbyeTimeoutMs) ==
              IoStatus::ok;
}

Handler::Next Handler::report_io(IoStatus status, const char* what) {
    switch (status) {
    case IoStatus::closed:
        log_action(LogLevel::debug, "client_closed", Outcome::success, {{"peer", setup_.peer}});
        break;
    case IoStatus::aborted:
        log_action(LogLevel::info, "handler_stop", Outcome::success,
                   {{"peer", setup_.peer}, {"reason", "server shutting down"}});
        break;
    case IoStatus::timeout:
        if (frame_started_)
            log_action(LogLevel::warning, "frame_timeout", Outcome::success,
                       {{"peer", setup_.peer}, {"seconds", setup_.frame_timeout_ms / 1000}});
        else
            log_action(LogLevel::warning, "idle_timeout", Outcome::success,
                       {{"peer", setup_.peer}, {"seconds", setup_.idle_timeout_ms / 1000}});
        break;
    default:
        log_action(LogLevel::warning, what, Outcome::fail,
                   {{"peer", setup_.peer}, {"error", to_string(status)}});
    }
    return Next::close;
}

Handler::Next Handler::send(const wire::Bytes& frame) {
    const IoStatus status = write_all_watching(setup_.client.get(), frame.data(), frame.size(),
                                               setup_.from_coordinator.get(), setup_.idle_timeout_ms);
    return status == IoStatus::ok ? Next::keep_going : report_io(status, "write_reply");
}

Handler::Next Handler::refuse(ErrorCode code, const wire::RequestHeader& header) {
    log_refusal(code, header);
    return send(wire::encode_error(code));
}

void Handler::log_refusal(ErrorCode code, const wire::RequestHeader& header) {
    const char* action = header.type == RequestType::bets ? "apuesta_recibida" : to_string(header.type);
    log_action(LogLevel::warning, action, Outcome::fail,
               {{"cantidad", header.count}, {"agencia", header.agency},
                {"agencia_conexion", bound_agency_}, {"error", to_string(code)}});
}

// ERROR 1 (and the last ERROR 6): the reply, then a lingering close.
Handler::Next Handler::send_and_close(ErrorCode code) {
    linger_ = send(wire::encode_error(code)) == Next::keep_going;
    return Next::close;
}
