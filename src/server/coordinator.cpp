// Coordinator rules: batch sequencing, DONE, the draw (see coordinator.hpp).
#include "server/coordinator.hpp"

#include "common/log.hpp"

#include <chrono>

using wire::ErrorCode;
using wire::ReplyType;

namespace {

ipc::Reply error_reply(ErrorCode code) { return {ipc::Outcome::answered, wire::encode_error(code)}; }

ipc::Reply ack(ipc::Outcome outcome, std::uint32_t stored) {
    return {outcome, wire::encode_reply(ReplyType::ack, stored)};
}

} // namespace

Coordinator::Coordinator(std::uint32_t agencies, BetStore store)
    : agencies_(agencies), store_(std::move(store)) {}

std::optional<ipc::Reply> Coordinator::handle(const ipc::Request& request) {
    const std::uint32_t agency = request.header.agency;
    if (agency == 0 || agency > agencies_) return error_reply(ErrorCode::bad_agency);
    switch (request.header.type) {
    case wire::RequestType::bets: return store_batch(request);
    case wire::RequestType::done: return mark_done(agency);
    case wire::RequestType::winners:
        if (!draw_done_) return std::nullopt;
        return winners_reply(agency);
    case wire::RequestType::echo: break; // handlers answer ECHO themselves
    }
    return error_reply(ErrorCode::malformed_frame);
}

// Batch numbers make retries safe: a batch at or below the last stored one is
// acknowledged again without being stored again; the next one is stored; a
// gap is refused. After DONE only re-sent batches are welcome.
ipc::Reply Coordinator::store_batch(const ipc::Request& request) {
    const auto& header = request.header;
    std::uint32_t& last = last_batch_[header.agency];
    if (header.batch <= last) return ack(ipc::Outcome::duplicate, header.count);
    if (done_.count(header.agency)) return error_reply(ErrorCode::agency_done);
    if (header.batch != last + 1) return error_reply(ErrorCode::batch_out_of_sequence);
    if (!store_.append(request.lines)) {
        log_action(LogLevel::error, "store_bets", Outcome::fail,
                   {{"agencia", header.agency}, {"lote", header.batch}, {"error", errno_text("write")}});
        return error_reply(ErrorCode::shutting_down);
    }
    last = header.batch;
    return ack(ipc::Outcome::stored, header.count);
}

ipc::Reply Coordinator::mark_done(std::uint32_t agency) {
    if (done_.insert(agency).second)
        log_action(LogLevel::info, "agencia_finalizada", Outcome::success,
                   {{"agencia", agency}, {"lotes", last_batch_[agency]},
                    {"pendientes", agencies_ - static_cast<std::uint32_t>(done_.size())}});
    if (!draw_done_ && done_.size() == agencies_) run_draw();
    return ack(ipc::Outcome::answered, 0);
}

// Streams the whole store back and keeps each agency's winning documents.
void Coordinator::run_draw() {
    const auto started = std::chrono::steady_clock::now();
    std::uint64_t winners = 0;
    const LoadResult loaded = load_bets(store_.path(), [&](const Bet& bet) {
        if (!has_won(bet)) return;
        winners_[bet.agency].push_back(bet.document);
        ++winners;
    });
    draw_done_ = true;
    if (!loaded.ok) { // never a partial result: every WINNERS gets ERROR instead
        draw_failed_ = true;
        log_action(LogLevel::error, "sorteo", Outcome::fail,
                   {{"file", store_.path()}, {"line", loaded.bad_line}, {"error", loaded.error}});
        return;
    }
    const auto elapsed = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started);
    log_action(LogLevel::info, "sorteo", Outcome::success,
               {{"apuestas", loaded.bets}, {"ganadores", winners},
                {"ms", static_cast<long long>(elapsed.count())}});
}

ipc::Reply Coordinator::winners_reply(std::uint32_t agency) const {
    static const std::vector<std::string> kNone;
    if (draw_failed_) return error_reply(ErrorCode::shutting_down);
    const auto found = winners_.find(agency);
    return {ipc::Outcome::answered, wire::encode_winners_reply(found == winners_.end() ? kNone : found->second)};
}
