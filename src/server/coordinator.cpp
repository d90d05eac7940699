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

std::optional<Coordinator> Coordinator::open(const Options& options, std::string& error) {
    BetStore store = BetStore::open(options.store_path);
    if (!store.is_open()) return error = errno_text("open " + options.store_path), std::nullopt;
    RecoveredState state;
    Journal journal = Journal::open(journal_path_for(options.store_path), store.size(), state, error);
    if (!journal.is_open()) return std::nullopt;
    const std::uint64_t found = store.size();
    if (found < state.store_length) {
        error = options.store_path + " is shorter than its journal vouches for (" + std::to_string(found) +
                " < " + std::to_string(state.store_length) + " bytes): refusing to lose acknowledged bets";
        return std::nullopt;
    }
    // Bytes past the vouched length were never acknowledged: clients resend them.
    if (found > state.store_length && !store.truncate(state.store_length))
        return error = errno_text("ftruncate " + options.store_path), std::nullopt;
    log_action(LogLevel::info, "recover", Outcome::success,
               {{"journal", state.had_journal ? "replayed" : "new"}, {"batches", state.batches},
                {"done", state.done.size()}, {"store_bytes", store.size()},
                {"dropped_bytes", found - store.size()}, {"dropped_journal_bytes", state.torn_bytes}});
    Coordinator coordinator(options, std::move(store), std::move(journal), state);
    if (coordinator.all_done()) coordinator.run_draw();
    return coordinator;
}

Coordinator::Coordinator(const Options& options, BetStore store, Journal journal, const RecoveredState& state)
    : options_(options), store_(std::move(store)), journal_(std::move(journal)),
      last_batch_(state.last_batch), done_(state.done) {}

void Coordinator::close() {
    store_.close();
    journal_.close();
}

bool Coordinator::all_done() const {
    if (options_.agencies == 0) return false; // an echo-only deployment has no draw
    for (std::uint32_t agency = 1; agency <= options_.agencies; ++agency)
        if (!done_.count(agency)) return false;
    return true;
}

std::optional<ipc::Reply> Coordinator::handle(const ipc::Request& request) {
    const std::uint32_t agency = request.header.agency;
    if (agency == 0 || agency > options_.agencies) return error_reply(ErrorCode::bad_agency);
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
    // The bets first, then the journal line that vouches for them, then the
    // ACK: a crash in between leaves an unvouched tail that recovery cuts off.
    const std::uint64_t before = store_.size();
    const bool stored = store_.append(request.lines) && (!options_.fsync || store_.sync()) &&
                        journal_.record_batch(header.agency, header.batch, store_.size()) &&
                        (!options_.fsync || journal_.sync());
    if (!stored) {
        log_action(LogLevel::error, "store_bets", Outcome::fail,
                   {{"agencia", header.agency}, {"lote", header.batch}, {"error", errno_text("write")}});
        (void)store_.truncate(before);
        return error_reply(ErrorCode::shutting_down);
    }
    last = header.batch;
    return ack(ipc::Outcome::stored, header.count);
}

// DONE is idempotent: the first one is journaled and logged, every one is
// ACK 0. The last agency's DONE runs the draw before its ACK is returned.
ipc::Reply Coordinator::mark_done(std::uint32_t agency) {
    if (!done_.count(agency)) {
        if (!journal_.record_done(agency) || (options_.fsync && !journal_.sync())) {
            log_action(LogLevel::error, "agencia_finalizada", Outcome::fail,
                       {{"agencia", agency}, {"error", errno_text("write")}});
            return error_reply(ErrorCode::shutting_down);
        }
        done_.insert(agency);
        log_action(LogLevel::info, "agencia_finalizada", Outcome::success,
                   {{"agencia", agency}, {"lotes", last_batch_[agency]},
                    {"pendientes", options_.agencies - static_cast<std::uint32_t>(done_.size())}});
    }
    if (!draw_done_ && all_done()) run_draw();
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
