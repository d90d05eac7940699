// Coordinator rules: sources and positions, fencing, DONE, the draw (see
// coordinator.hpp).
#include "server/coordinator.hpp"

#include "common/log.hpp"

#include <chrono>

using wire::ErrorCode;
using wire::ReplyType;

namespace {

constexpr std::size_t kDrawSliceBytes = 1 << 20; // a few milliseconds of reading per poll round

ipc::Reply error_reply(ErrorCode code) { return {0, 0, wire::encode_error(code)}; }

ipc::Reply ack(std::uint32_t count, std::uint16_t stored_now) {
    return {0, stored_now, wire::encode_reply(ReplyType::ack, count)};
}

std::uint64_t now_ms() {
    using namespace std::chrono;
    return static_cast<std::uint64_t>(duration_cast<milliseconds>(steady_clock::now().time_since_epoch()).count());
}

// `lines` without its first `count` lines (store lines never hold a '\n').
std::string_view skip_lines(std::string_view lines, std::size_t count) {
    for (; count > 0 && !lines.empty(); --count) lines.remove_prefix(std::min(lines.find('\n') + 1, lines.size()));
    return lines;
}

} // namespace

// Cuts `file` (the store or the journal) back to `length` after a failed
// write, keeping errno for the caller's log line. If even that fails, the
// file holds bytes nobody vouches for: no more writes until a restart, whose
// recovery cuts them off.
template <typename File>
void Coordinator::roll_back(File& file, std::uint64_t length) {
    const int saved = errno;
    if (!file.truncate(length)) {
        writable_ = false;
        log_action(LogLevel::critical, "rollback", Outcome::fail,
                   {{"file", file.path()}, {"error", errno_text("ftruncate")}, {"writes", "refused until restart"}});
    }
    errno = saved;
}

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
               {{"journal", state.had_journal ? "replayed" : "new"}, {"fuentes", state.sources.size()},
                {"done", state.done.size()}, {"store_bytes", store.size()},
                {"dropped_bytes", found - store.size()}, {"dropped_journal_bytes", state.torn_bytes}});
    Coordinator coordinator(options, std::move(store), std::move(journal), std::move(state));
    if (coordinator.all_done()) coordinator.start_draw();
    return coordinator;
}

Coordinator::Coordinator(const Options& options, BetStore store, Journal journal, RecoveredState state)
    : options_(options), store_(std::move(store)), journal_(std::move(journal)),
      sources_(std::move(state.sources)), done_(std::move(state.done)), last_connection_(state.last_connection) {
    for (ipc::SourceId id = 0; id < sources_.size(); ++id) source_ids_[{sources_[id].agency, sources_[id].name}] = id;
}

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

std::optional<ipc::Reply> Coordinator::handle(const ipc::Request& request, std::uint64_t connection) {
    const std::uint32_t agency = request.header.agency;
    if (agency == 0 || agency > options_.agencies) return error_reply(ErrorCode::bad_agency);
    switch (request.header.type) {
    case wire::RequestType::open: return open_source(request, connection);
    case wire::RequestType::bets: return store_bets(request, connection);
    case wire::RequestType::done: return mark_done(agency);
    case wire::RequestType::winners:
        if (!draw_done_) return std::nullopt;
        return winners_reply(agency);
    case wire::RequestType::echo: break; // handlers answer ECHO themselves
    }
    return error_reply(ErrorCode::malformed_frame);
}

// OPEN names a source and fences it: from now on only `connection` may feed
// it. The reply tells how much of it is stored already, and the digest of
// that part, so the client resumes from there or refuses a changed file.
ipc::Reply Coordinator::open_source(const ipc::Request& request, std::uint64_t connection) {
    if (!wire::is_valid_source_name(request.name)) return error_reply(ErrorCode::malformed_frame);
    if (!writable_) return error_reply(ErrorCode::storage_failure);
    const std::uint64_t journal_before = journal_.size();
    const auto [entry, is_new] = source_ids_.try_emplace({request.header.agency, request.name},
                                                         static_cast<ipc::SourceId>(sources_.size()));
    const ipc::SourceId id = entry->second;
    if (is_new) sources_.push_back(SourceState{request.header.agency, request.name, 0, 0, 0});
    const bool journaled = (!is_new || journal_.record_source(id, sources_[id])) &&
                           journal_.record_open(id, connection) && journal_durably(journal_before);
    if (!journaled) {
        log_action(LogLevel::error, "abrir_fuente", Outcome::fail,
                   {{"agencia", request.header.agency}, {"fuente", request.name}, {"error", errno_text("journal")}});
        roll_back(journal_, journal_before); // the source line too, or ids would repeat
        if (is_new) sources_.pop_back(), source_ids_.erase(entry);
        return error_reply(ErrorCode::storage_failure);
    }
    SourceState& source = sources_[id];
    source.opener = connection;
    return {id, 0, wire::encode_resume_reply(static_cast<std::uint32_t>(source.stored), source.digest)};
}

// Positions make retries and re-runs safe whatever the batching: a frame
// wholly below the stored count is acknowledged without storing, one that
// straddles it stores only its tail, one past it is a gap.
ipc::Reply Coordinator::store_bets(const ipc::Request& request, std::uint64_t connection) {
    const auto& header = request.header;
    if (request.source >= sources_.size() || request.hashes.size() != header.count)
        return error_reply(ErrorCode::malformed_frame);
    SourceState& source = sources_[request.source];
    if (source.agency != header.agency) return error_reply(ErrorCode::bad_agency);
    if (source.opener != connection) return error_reply(ErrorCode::fenced);
    const std::uint64_t first = header.first, end = first + header.count;
    if (first > source.stored) return error_reply(ErrorCode::gap);
    if (end <= source.stored) return ack(header.count, 0);
    if (draw_started()) return error_reply(ErrorCode::draw_held);
    const std::size_t already = static_cast<std::size_t>(source.stored - first);
    SourceState after = source;
    after.stored = end;
    for (std::size_t i = already; i < header.count; ++i) after.digest += request.hashes[i];
    if (!write_bets(request.source, after, skip_lines(request.lines, already))) {
        log_action(LogLevel::error, "store_bets", Outcome::fail,
                   {{"agencia", header.agency}, {"fuente", source.name}, {"first", first},
                    {"error", errno_text("write")}});
        return error_reply(ErrorCode::storage_failure);
    }
    source = after;
    return ack(header.count, static_cast<std::uint16_t>(header.count - already));
}

// The bets first, then the journal line that vouches for them, then the
// reply: a crash in between leaves an unvouched tail that recovery cuts off.
// A failure anywhere rolls both files back, so the next try starts clean.
bool Coordinator::write_bets(ipc::SourceId id, const SourceState& after, std::string_view lines) {
    if (!writable_) return errno = EIO, false;
    const std::uint64_t store_before = store_.size(), journal_before = journal_.size();
    if (store_.append(lines) && (!options_.fsync || store_.sync()) &&
        journal_.record_bets(id, after, store_.size()) && journal_durably(journal_before))
        return true;
    roll_back(store_, store_before);
    return false;
}

// Makes the lines appended since `rollback_to` durable if fsync is on; on
// failure they are cut off again (errno kept).
bool Coordinator::journal_durably(std::uint64_t rollback_to) {
    if (!options_.fsync || journal_.sync()) return true;
    roll_back(journal_, rollback_to);
    return false;
}

// DONE is idempotent: the first one is journaled and logged, every one is
// ACK 0. The last agency's DONE starts the draw.
ipc::Reply Coordinator::mark_done(std::uint32_t agency) {
    if (!done_.count(agency)) {
        const std::uint64_t journal_before = journal_.size();
        if (!writable_) return error_reply(ErrorCode::storage_failure);
        if (!journal_.record_done(agency) || !journal_durably(journal_before)) {
            log_action(LogLevel::error, "agencia_finalizada", Outcome::fail,
                       {{"agencia", agency}, {"error", errno_text("journal")}});
            return error_reply(ErrorCode::storage_failure);
        }
        done_.insert(agency);
        log_action(LogLevel::info, "agencia_finalizada", Outcome::success,
                   {{"agencia", agency},
                    {"pendientes", options_.agencies - static_cast<std::uint32_t>(done_.size())}});
    }
    if (!draw_started() && all_done()) start_draw();
    return ack(0, 0);
}

// From here on no new bet is stored: the draw reads a store that stays put.
void Coordinator::start_draw() {
    draw_.emplace(store_.path());
    draw_started_ms_ = now_ms();
}

// One slice of the store; keeps each agency's winning documents.
void Coordinator::advance_draw() {
    if (!draw_) return;
    const bool more = draw_->advance(kDrawSliceBytes, [this](const Bet& bet) {
        if (has_won(bet)) winners_[bet.agency].push_back(bet.document);
    });
    if (!more) finish_draw();
}

void Coordinator::finish_draw() {
    const LoadResult loaded = draw_->result();
    draw_.reset();
    draw_done_ = true;
    if (!loaded.ok) { // never a partial result: every WINNERS gets ERROR instead
        draw_failed_ = true;
        winners_.clear();
        log_action(LogLevel::error, "sorteo", Outcome::fail,
                   {{"file", store_.path()}, {"line", loaded.bad_line}, {"error", loaded.error}});
        return;
    }
    std::size_t winners = 0;
    for (const auto& [agency, documents] : winners_) winners += documents.size();
    log_action(LogLevel::info, "sorteo", Outcome::success,
               {{"apuestas", loaded.bets}, {"ganadores", winners}, {"ms", now_ms() - draw_started_ms_}});
}

ipc::Reply Coordinator::winners_reply(std::uint32_t agency) const {
    static const std::vector<std::string> kNone;
    if (draw_failed_) return error_reply(ErrorCode::storage_failure);
    const auto found = winners_.find(agency);
    return {0, 0, wire::encode_winners_reply(found == winners_.end() ? kNone : found->second)};
}
