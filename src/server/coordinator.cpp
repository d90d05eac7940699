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
bool Coordinator::roll_back(File& file, std::uint64_t length) {
    const int saved = errno;
    const bool cut = file.truncate(length);
    if (!cut) {
        writable_ = false;
        log_action(LogLevel::critical, "rollback", Outcome::fail,
                   {{"file", file.path()}, {"error", errno_text("ftruncate")}, {"writes", "refused until restart"}});
    }
    errno = saved;
    return cut;
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
                " < " + std::to_string(state.store_length) + " bytes): refusing to lose acknowledged bets; after a power loss with SERVER_FSYNC=false, "
                "bin/server --repair falls back to what the store holds";
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
    const auto found = source_ids_.find({request.header.agency, request.name});
    const ipc::SourceId id =
        found == source_ids_.end() ? static_cast<ipc::SourceId>(sources_.size()) : found->second;
    remember(id);
    if (found == source_ids_.end()) {
        sources_.push_back(SourceState{request.header.agency, request.name, 0, 0, 0});
        source_ids_.emplace(std::make_pair(request.header.agency, request.name), id);
        journal_.record_source(id, sources_[id]);
    }
    SourceState& source = sources_[id];
    source.opener = connection;
    journal_.record_open(id, connection);
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
    if (!writable_) return error_reply(ErrorCode::storage_failure);
    const std::size_t already = static_cast<std::size_t>(source.stored - first);
    remember(request.source);
    source.stored = end;
    for (std::size_t i = already; i < header.count; ++i) source.digest += request.hashes[i];
    staged_.lines += skip_lines(request.lines, already);
    journal_.record_bets(request.source, source, store_.size() + staged_.lines.size());
    return ack(header.count, static_cast<std::uint16_t>(header.count - already));
}

// DONE is idempotent: the first one is journaled (and logged once
// committed), every one is ACK 0. The commit that makes the last agency's
// DONE durable starts the draw.
ipc::Reply Coordinator::mark_done(std::uint32_t agency) {
    if (done_.count(agency)) return ack(0, 0);
    if (!writable_) return error_reply(ErrorCode::storage_failure);
    stage();
    done_.insert(agency);
    staged_.done.push_back(agency);
    journal_.record_done(agency);
    return ack(0, 0);
}

// The first change since the last commit notes how many sources there were.
void Coordinator::stage() {
    if (!staged_.any) staged_.sources = sources_.size();
    staged_.any = true;
}

// Notes, before a change to source `id`, how to undo it (a source created
// since the last commit is undone by dropping it).
void Coordinator::remember(ipc::SourceId id) {
    stage();
    if (id < staged_.sources) staged_.before.emplace_back(id, sources_[id]);
}

bool Coordinator::commit() {
    if (!staged_.any) return true;
    const bool written = write_staged();
    if (written) {
        auto pending = options_.agencies - static_cast<std::uint32_t>(done_.size() - staged_.done.size());
        for (std::uint32_t agency : staged_.done)
            log_action(LogLevel::info, "agencia_finalizada", Outcome::success,
                       {{"agencia", agency}, {"pendientes", --pending}});
    } else {
        undo_staged();
    }
    staged_ = Staged{};
    if (!draw_started() && all_done()) start_draw();
    return written;
}

// The bets first, then the journal lines that vouch for them (each durable
// before the next step when there is a syncer): a crash in between leaves an
// unvouched tail that recovery cuts off. A failure rolls both files back.
bool Coordinator::write_staged() {
    const std::uint64_t store_before = store_.size(), journal_before = journal_.size();
    const char* failed = nullptr; // nothing is staged while !writable_: each request checks first
    if (!store_.append(staged_.lines)) failed = "write";
    else if (!staged_.lines.empty() && !make_durable(store_)) failed = "fsync";
    else if (!journal_.write_staged()) failed = "journal write";
    else if (!make_durable(journal_)) failed = "journal fsync";
    if (!failed) return true;
    journal_.drop_staged();
    log_action(LogLevel::error, "store_bets", Outcome::fail,
               {{"bytes", staged_.lines.size()}, {"error", errno_text(failed)}});
    // The store is cut back only if the journal was: a journal left
    // vouching for bytes no longer in the store would refuse the restart,
    // while unvouched bets left in the store are cut off by recovery.
    if (roll_back(journal_, journal_before)) roll_back(store_, store_before);
    return false;
}

template <typename File>
bool Coordinator::make_durable(File& file) {
    return options_.syncer == nullptr || options_.syncer->sync(file.fd(), file.path());
}

// Puts the sources and the done set back as they were at the last commit:
// the newest change is undone first, so each source ends as it was before
// its first one.
void Coordinator::undo_staged() {
    for (auto change = staged_.before.rbegin(); change != staged_.before.rend(); ++change)
        sources_[change->first] = change->second;
    for (std::size_t id = staged_.sources; id < sources_.size(); ++id)
        source_ids_.erase({sources_[id].agency, sources_[id].name});
    sources_.resize(staged_.sources);
    for (std::uint32_t agency : staged_.done) done_.erase(agency);
}

ipc::Reply Coordinator::voided(const ipc::Reply& reply) {
    if (reply.frame.size() < wire::kReplyHeaderSize) return reply;
    const auto header = wire::decode_reply_header(reply.frame.data());
    const bool vouches = header.ok() && (header.value().type == ReplyType::ack || header.value().type == ReplyType::resume);
    return vouches ? error_reply(ErrorCode::storage_failure) : reply;
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
    const auto documents = winners_of(agency);
    if (!documents) return error_reply(ErrorCode::storage_failure);
    return {0, 0, wire::encode_winners_reply(*documents)};
}

std::optional<std::vector<std::string>> Coordinator::winners_of(std::uint32_t agency) const {
    if (draw_failed_) return std::nullopt;
    const auto found = winners_.find(agency);
    return found == winners_.end() ? std::vector<std::string>{} : found->second;
}
