// The coordinator process: start, the acceptor, the handlers' pipes, group
// commit and shutdown (see server.hpp).
#include "server/server.hpp"

#include "common/io.hpp"
#include "common/log.hpp"
#include "common/socket.hpp"
#include "server/handler.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/file.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <chrono>
#include <vector>

namespace {

// SIGTERM: the handlers get this long to finish before the acceptor SIGKILLs
// them, and the acceptor a little longer before the coordinator SIGKILLs it,
// so that the server exits within 2 s.
constexpr int kHandlerDeadlineMs = 1500;
constexpr int kAcceptorDeadlineMs = 1800;

constexpr rlim_t kSpareDescriptors = 32;   // stdio, store, journal, epoll, signals, acceptor...
constexpr rlim_t kMinArrivals = 16;        // below this, the open-file limit refuses the start
// Epoll tokens: a child's are connection << 2 | end (connections are
// numbered from 1), a waiting agency's id << 2 | WaitingRoom::kTokenTag.
constexpr std::uint64_t kAcceptorToken = 0;
constexpr std::uint64_t kSignalToken = 1;
constexpr unsigned kTokenShift = WaitingRoom::kTokenShift;
constexpr std::uint64_t kTagMask = (1u << kTokenShift) - 1;
constexpr std::uint64_t kWriteEnd = 1;

using Clock = std::chrono::steady_clock;

} // namespace

Server::Server(ServerConfig config, Syncer& syncer)
    : config_(std::move(config)), syncer_(syncer), signals_(SignalPipe::install({SIGTERM, SIGINT, SIGCHLD})) {}

int Server::run() {
    ignore_sigpipe();
    // Should the acceptor die, its handlers become this process's children
    // (not init's), so that the shutdown still waits for every one of them.
    ::prctl(PR_SET_CHILD_SUBREAPER, 1);
    if (const int refused = start(); refused != 0) {
        log_action(LogLevel::critical, "exit", Outcome::fail, {{"reason", "startup failed"}});
        return refused;
    }
    const std::string failure = serve();
    shutdown();
    // Peak memory of this process and of the largest handler, for the benchmark.
    rusage self{}, children{};
    ::getrusage(RUSAGE_SELF, &self);
    ::getrusage(RUSAGE_CHILDREN, &children);
    if (!failure.empty()) {
        log_action(LogLevel::critical, "exit", Outcome::fail, {{"reason", failure}});
        return 1;
    }
    log_action(LogLevel::info, "exit", Outcome::success,
               {{"max_rss_kb", self.ru_maxrss}, {"handler_max_rss_kb", children.ru_maxrss}});
    return 0;
}

// 0 when serving can begin, else the exit code. What can refuse the start
// without touching the store comes first: a server that cannot listen (its
// port taken, say by another instance on the same store) leaves no new
// store or journal behind, and one whose store is in use changes nothing.
int Server::start() {
    std::string error;
    if (!raise_open_file_limit()) return 1;
    Fd listener = listen_tcp(config_.ip, config_.port, config_.listen_backlog, error);
    if (!listener) {
        log_action(LogLevel::critical, "listen", Outcome::fail,
                   {{"ip", config_.ip}, {"port", config_.port}, {"error", error}});
        return 1;
    }
    listen_port_ = local_port(listener.get());
    if (const int refused = lock_store(); refused != 0) return refused;
    coordinator_ = Coordinator::open({config_.agencies, config_.bets_file, config_.fsync ? &syncer_ : nullptr}, error);
    if (!coordinator_) {
        log_action(LogLevel::critical, "open_store", Outcome::fail, {{"file", config_.bets_file}, {"error", error}});
        return 1;
    }
    if (!poller_.valid() || !poller_.add(signals_.fd(), EPOLLIN, kSignalToken)) {
        log_action(LogLevel::critical, "epoll", Outcome::fail, {{"error", errno_text("epoll")}});
        return 1;
    }
    if (!start_acceptor(std::move(listener))) return 1;
    log_action(LogLevel::info, "listen", Outcome::success,
               {{"ip", config_.ip}, {"port", listen_port_}, {"agencies", config_.agencies}});
    return 0;
}

// One server per store: a second one on the same files (another port, or
// SERVER_PORT=0) would append to them at the same time. An exclusive flock
// on the store, held by this process until it exits, keeps it out; it is
// refused as a configuration error (exit 2) that names both files. 0 when
// the lock is taken, else the exit code.
int Server::lock_store() {
    const std::string& store = config_.bets_file;
    bool in_use = false;
    store_lock_ = ::lock_store(store, in_use);
    if (store_lock_) return 0;
    log_action(LogLevel::critical, "lock_store", Outcome::fail,
               {{"file", store}, {"journal", journal_path_for(store)},
                {"error", in_use ? "in use by another server" : errno_text("open/flock")}});
    return in_use ? 2 : 1;
}

// Forks the acceptor with the listener and one end of a socket pair; the
// coordinator keeps the other end (new handlers arrive on it) and not the
// listener: only the acceptor accepts. Forked now, while the coordinator
// holds no connection, the acceptor starts small and stays so.
bool Server::start_acceptor(Fd listener) {
    int ends[2];
    if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, ends) != 0) {
        log_action(LogLevel::critical, "socketpair", Outcome::fail, {{"error", errno_text("socketpair")}});
        return false;
    }
    acceptor_channel_.reset(ends[0]);
    Fd acceptor_end(ends[1]);
    const pid_t pid = fork_holding_signals(); // run_acceptor sets its dispositions, then releases them
    if (pid < 0) {
        log_action(LogLevel::critical, "fork", Outcome::fail, {{"error", errno_text("fork")}});
        return false;
    }
    if (pid == 0) {
        signals_.uninstall();
        close_descriptors_except({listener.get(), acceptor_end.get()});
        run_acceptor(std::move(listener), std::move(acceptor_end),
                     {config_.max_handlers, config_.max_arrivals, config_.first_frame_timeout_seconds * 1000,
                      config_.agencies, config_.idle_timeout_seconds * 1000, config_.frame_timeout_seconds * 1000},
                     kHandlerDeadlineMs);
    }
    acceptor_pid_ = pid;
    if (!poller_.add(acceptor_channel_.get(), EPOLLIN, kAcceptorToken)) {
        log_action(LogLevel::critical, "epoll", Outcome::fail, {{"error", errno_text("epoll_ctl")}});
        return false; // the acceptor stops when this process exits and closes the channel
    }
    log_action(LogLevel::info, "start_acceptor", Outcome::success, {{"acceptor_pid", pid}});
    return true;
}

// The coordinator holds two pipe ends per handler and one socket per
// agency waiting for the draw; the acceptor (which inherits the limit) one
// per arrival. The soft limit is raised to the hard one (the agencies that
// wait have no bound of their own: 10,000 of them must fit). Arrivals are
// clamped, with a warning, to what that limit leaves them; the start is
// refused only when it cannot even hold the handlers and a few arrivals.
bool Server::raise_open_file_limit() {
    const rlim_t for_handlers = 2 * static_cast<rlim_t>(config_.max_handlers) + kSpareDescriptors;
    rlimit limit{};
    if (::getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
        limit.rlim_cur = limit.rlim_max;
        ::setrlimit(RLIMIT_NOFILE, &limit);
        ::getrlimit(RLIMIT_NOFILE, &limit);
    }
    if (limit.rlim_cur < for_handlers + kMinArrivals) {
        log_action(LogLevel::critical, "open_file_limit", Outcome::fail,
                   {{"limit", limit.rlim_cur}, {"hard_limit", limit.rlim_max}, {"needed", for_handlers + kMinArrivals},
                    {"error", "SERVER_MAX_HANDLERS needs more open files than allowed: lower it or raise ulimit -n"}});
        return false;
    }
    const rlim_t waiting = static_cast<rlim_t>(config_.agencies); // one each, at the least, after their DONE
    if (limit.rlim_cur < for_handlers + waiting)
        log_action(LogLevel::warning, "open_file_limit", Outcome::success,
                   {{"limit", limit.rlim_cur}, {"server_agencies", config_.agencies},
                    {"warning", "fewer descriptors than agencies that may wait for the draw: raise ulimit -n"}});
    const rlim_t room = limit.rlim_cur - for_handlers;
    if (room < static_cast<rlim_t>(config_.max_arrivals)) {
        log_action(LogLevel::warning, "open_file_limit", Outcome::success,
                   {{"limit", limit.rlim_cur}, {"server_max_arrivals", room}, {"asked", config_.max_arrivals}});
        config_.max_arrivals = static_cast<int>(room);
    }
    return true;
}

// The event loop: signals, new handlers, and every handler's pipes, as
// epoll reports them ready. The pipes are served first in each round, so the
// requests the handlers had already sent are handled before a SIGTERM read in
// the same round ends it. While the draw runs, the wait does not block and
// each round reads one more slice of the store: requests and signals are
// still served in between.
std::string Server::serve() {
    std::vector<epoll_event> ready(256);
    while (!stopping_) {
        const int lingering_ms = waiting_.expire();
        const int wait_ms = coordinator_->draw_running() ? 0 : lingering_ms;
        const int count = poller_.wait(ready, wait_ms);
        if (count < 0) {
            if (errno == EINTR) continue;
            log_action(LogLevel::critical, "epoll_wait", Outcome::fail, {{"error", errno_text("epoll_wait")}});
            return "epoll_wait failed";
        }
        bool new_handlers = false, signal = false;
        for (int i = 0; i < count; ++i) {
            const epoll_event& event = ready[static_cast<std::size_t>(i)];
            const std::uint64_t token = event.data.u64;
            if (token == kAcceptorToken) new_handlers = true;
            else if (token == kSignalToken) signal = true;
            else if ((token & kTagMask) == WaitingRoom::kTokenTag) waiting_.on_event(token, event.events);
            else on_child_event(token);
        }
        commit_round();
        forget_closed_children();
        if (new_handlers) receive_from_channel();
        if (signal) on_signals();
        if (acceptor_ended_ && !stopping_) {
            log_action(LogLevel::critical, "acceptor", Outcome::fail, {{"error", "the acceptor process ended"}});
            return "the acceptor process ended";
        }
        if (!stopping_ && coordinator_->draw_running()) advance_draw();
    }
    return "";
}

// A child's token is its connection number and which of its pipes is ready.
void Server::on_child_event(std::uint64_t token) {
    const auto found = children_.find(token >> kTokenShift);
    if (found == children_.end() || found->second.closed) return;
    if (token & kWriteEnd) flush(found->second);
    else read_requests(found->second);
}

// EPOLLOUT on the reply pipe only while replies wait in the outbox; level-
// triggered epoll would otherwise report the idle pipe writable every round.
void Server::watch_outbox(Child& child) {
    const bool want = !child.outbox.empty() && !child.closed;
    if (want == child.writing) return;
    const std::uint64_t token = child.connection << kTokenShift | kWriteEnd;
    if (want && !child.writing) poller_.add(child.to_handler.get(), EPOLLOUT, token);
    else poller_.remove(child.to_handler.get());
    child.writing = want;
}

// Children closed this round leave the map (and epoll) here, once each.
void Server::forget_closed_children() {
    for (std::uint64_t connection : closed_) {
        const auto found = children_.find(connection);
        if (found == children_.end()) continue;
        poller_.remove(found->second.from_handler.get());
        if (found->second.writing) poller_.remove(found->second.to_handler.get());
        children_.erase(found);
    }
    closed_.clear();
}

void Server::advance_draw() {
    coordinator_->advance_draw();
    if (coordinator_->draw_done())
        waiting_.open_doors([this](std::uint32_t agency) { return coordinator_->winners_of(agency); });
}

// SIGTERM / SIGINT start the shutdown; SIGCHLD only means "reap" (the
// acceptor; handlers are the acceptor's children).
void Server::on_signals() {
    for (int number : signals_.drain()) {
        if (number == SIGCHLD) continue;
        log_action(LogLevel::info, "shutdown", Outcome::in_progress, {{"signal", strsignal(number)}});
        stopping_ = true;
    }
    reap_children();
}

// Takes every message on the channel since the last round: the handlers
// the acceptor has forked, and the agencies whose handlers handed their
// connection over to wait for the draw.
void Server::receive_from_channel() {
    while (!acceptor_ended_) {
        NewHandler handler;
        WaitingAgency waiting;
        const Received received = ::receive_from_channel(acceptor_channel_.get(), handler, waiting);
        if (received == Received::nothing_yet) return;
        if (received == Received::new_handler) add_child(std::move(handler));
        else if (received == Received::waiting_agency) waiting_.add(std::move(waiting));
        else if (received == Received::ended) {
            acceptor_ended_ = true;
            poller_.remove(acceptor_channel_.get());
        }
    }
}

// A new handler's pipes, from the acceptor: non-blocking on this side, so
// that one slow handler can never stall the loop. Its connection number
// (the fencing token of its OPENs) follows the order of the forks.
void Server::add_child(NewHandler handler) {
    set_non_blocking(handler.from_handler.get());
    set_non_blocking(handler.to_handler.get());
    const std::uint64_t connection = coordinator_->new_connection();
    Child& child = children_[connection];
    child.pid = handler.pid;
    child.connection = connection;
    child.peer = std::move(handler.peer);
    child.from_handler = std::move(handler.from_handler);
    child.to_handler = std::move(handler.to_handler);
    if (!poller_.add(child.from_handler.get(), EPOLLIN, connection << kTokenShift)) {
        log_action(LogLevel::error, "epoll", Outcome::fail, {{"peer", child.peer}, {"error", errno_text("epoll_ctl")}});
        ::kill(child.pid, SIGKILL); // a handler the coordinator cannot hear is no use
        children_.erase(connection);
    }
}

// Takes whatever the handler has written, then handles each whole message in
// order. A message that does not parse means the handler cannot be trusted:
// it is killed. (A WINNERS never comes this way: its handler hands the
// connection over on the channel, to the waiting room.)
void Server::read_requests(Child& child) {
    char chunk[16 * 1024];
    for (;;) {
        const ssize_t got = ::read(child.from_handler.get(), chunk, sizeof chunk);
        if (got > 0) {
            child.inbox.append(chunk, static_cast<std::size_t>(got));
            if (static_cast<std::size_t>(got) < sizeof chunk) break; // drained: epoll tells of more
            continue;
        }
        if (got < 0 && errno == EINTR) continue;
        if (got == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) mark_closed(child);
        break;
    }
    ipc::Request request;
    for (ipc::Parse parse; (parse = ipc::take_request(child.inbox, request)) != ipc::Parse::incomplete;) {
        if (parse == ipc::Parse::invalid) {
            log_action(LogLevel::error, "ipc", Outcome::fail, {{"handler_pid", child.pid}, {"error", "bad message"}});
            ::kill(child.pid, SIGKILL);
            mark_closed(child);
            return;
        }
        auto reply = coordinator_->handle(request, child.connection);
        if (!reply) { // a WINNERS before the draw: handlers hand those over on the channel instead
            log_action(LogLevel::error, "ipc", Outcome::fail, {{"handler_pid", child.pid}, {"error", "WINNERS on the pipe"}});
            ::kill(child.pid, SIGKILL);
            mark_closed(child);
            return;
        }
        held_.emplace_back(child.connection, std::move(*reply));
    }
    // An idle connection keeps no buffer: the coordinator's memory (and the
    // cost of every fork) must not grow by a frame's size per connection.
    if (child.inbox.empty()) std::string().swap(child.inbox);
}

// Group commit: every request read this round has only been staged; one
// commit writes them all (one store write, one journal write, and one fsync
// each with SERVER_FSYNC), and only then do their replies go out, in the
// order the requests came. Frames that arrive while a commit (its fsync)
// runs wait in the pipes and share the next one.
void Server::commit_round() {
    if (held_.empty()) return;
    const bool committed = coordinator_->commit();
    for (const auto& [connection, reply] : held_) {
        const auto found = children_.find(connection);
        if (found != children_.end())
            found->second.outbox.append(ipc::encode_reply(committed ? reply : Coordinator::voided(reply)));
    }
    // One write per handler for all its replies of the round.
    for (const auto& [connection, reply] : held_) {
        const auto found = children_.find(connection);
        if (found != children_.end() && !found->second.outbox.empty()) flush(found->second);
    }
    held_.clear();
}

// Writes what the pipe takes now; epoll reports EPOLLOUT while more is left.
void Server::flush(Child& child) {
    while (!child.outbox.empty()) {
        const ssize_t put = ::write(child.to_handler.get(), child.outbox.data(), child.outbox.size());
        if (put > 0) { child.outbox.erase(0, static_cast<std::size_t>(put)); continue; }
        if (put < 0 && errno == EINTR) continue;
        if (put < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
        mark_closed(child); // the handler is gone
        break;
    }
    watch_outbox(child);
}

void Server::mark_closed(Child& child) {
    if (child.closed) return;
    child.closed = true;
    closed_.push_back(child.connection);
}

// Reaps every child that has ended: the acceptor, and the handlers of an
// acceptor that died (the coordinator is their subreaper, see run()).
// Returns false once no child is left.
bool Server::reap_children() {
    int status = 0;
    pid_t pid;
    while ((pid = ::waitpid(-1, &status, WNOHANG)) > 0) {
        if (pid != acceptor_pid_) continue; // an orphaned handler: its exit needs no line
        acceptor_pid_ = -1;
        // Its handlers hold copies of its end of the channel, so the channel
        // does not end with it: take what it had sent (while serving: in
        // the shutdown nothing new is taken in), then stop listening.
        if (!stopping_) receive_from_channel();
        if (!acceptor_ended_) {
            acceptor_ended_ = true;
            poller_.remove(acceptor_channel_.get());
        }
        if (WIFSIGNALED(status))
            log_action(LogLevel::warning, "acceptor_exit", Outcome::fail, {{"signal", strsignal(WTERMSIG(status))}});
        else
            log_action(LogLevel::debug, "acceptor_exit", Outcome::success, {{"code", WEXITSTATUS(status)}});
    }
    return !(pid < 0 && errno == ECHILD);
}

// SIGTERM: stop accepting (the acceptor closes the listener and passes the
// handlers it forked meanwhile), answer parked WINNERS with "shutting down",
// close every pipe (handlers take EOF as "stop now"), wait for the acceptor
// (which waits for the handlers), close the store.
void Server::shutdown() {
    const auto started = Clock::now();
    stop_acceptor(started + std::chrono::milliseconds(kHandlerDeadlineMs));
    log_action(LogLevel::info, "close_socket", Outcome::success, {{"socket", "listener"}, {"port", listen_port_}});
    waiting_.close_all();
    std::vector<pid_t> handlers;
    for (auto& [connection, child] : children_) {
        handlers.push_back(child.pid);
        child.from_handler.reset();
        child.to_handler.reset();
        log_action(LogLevel::info, "close_pipe", Outcome::success, {{"handler_pid", child.pid}, {"peer", child.peer}});
    }
    children_.clear();
    wait_for_children(started + std::chrono::milliseconds(kAcceptorDeadlineMs), handlers);
    coordinator_->close();
    log_action(LogLevel::info, "close_file", Outcome::success, {{"file", config_.bets_file}});
    log_action(LogLevel::info, "close_file", Outcome::success, {{"file", journal_path_for(config_.bets_file)}});
    signals_.uninstall();
}

// Shuts the coordinator's end of the channel (the acceptor's "stop") and
// takes the handlers it still passes until it answers with the end of the
// channel: then the listener is closed and every handler is known here.
void Server::stop_acceptor(Clock::time_point deadline) {
    ::shutdown(acceptor_channel_.get(), SHUT_WR);
    while (!acceptor_ended_) {
        pollfd channel{acceptor_channel_.get(), POLLIN, 0};
        if (::poll(&channel, 1, ms_until(deadline)) == 0) break; // a hung acceptor is killed below
        receive_from_channel();
    }
}

// The acceptor exits once its handlers have (SIGCHLD wakes us through the
// self-pipe); past the deadline it is killed, and so is any orphaned handler
// still running (`handlers`: the pids this process was told of). Every
// child is reaped either way: no zombies, no orphans.
void Server::wait_for_children(Clock::time_point deadline, const std::vector<pid_t>& handlers) {
    while (reap_children() && ms_until(deadline) > 0) {
        pollfd wake{signals_.fd(), POLLIN, 0};
        ::poll(&wake, 1, ms_until(deadline));
        signals_.drain();
    }
    if (acceptor_pid_ > 0) { // its handlers become ours once it is reaped
        log_action(LogLevel::warning, "acceptor_kill", Outcome::success, {{"acceptor_pid", acceptor_pid_}});
        ::kill(acceptor_pid_, SIGKILL);
        for (int status = 0; ::waitpid(acceptor_pid_, &status, 0) < 0 && errno == EINTR;) {}
    }
    // A handler passed but never taken in (stop_acceptor gave up at its
    // deadline) keeps its reply pipe open through the channel's queued
    // message; closing the channel drops it, so that handler reads EOF and
    // ends by itself before the blocking wait below.
    acceptor_channel_.reset();
    for (pid_t pid : handlers) {
        int status = 0;
        if (::waitpid(pid, &status, WNOHANG) != 0) continue; // reaped now, or not our child
        log_action(LogLevel::warning, "handler_kill", Outcome::success, {{"handler_pid", pid}});
        ::kill(pid, SIGKILL);
    }
    for (int status = 0; ::waitpid(-1, &status, 0) > 0 || errno == EINTR;) {}
    acceptor_pid_ = -1;
}
