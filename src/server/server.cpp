// The server process: accept loop, handler processes, coordinator pipes and
// shutdown (see server.hpp).
#include "server/server.hpp"

#include "common/io.hpp"
#include "common/log.hpp"
#include "common/socket.hpp"
#include "server/handler.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/epoll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <chrono>
#include <vector>

namespace {

constexpr int kShutdownDeadlineMs = 1500; // then SIGKILL: exit within 2 s

constexpr rlim_t kSpareDescriptors = 32;   // stdio, listener, store, journal, epoll, signals...
constexpr std::uint64_t kListenerToken = 0; // epoll tokens; a child's are
constexpr std::uint64_t kSignalToken = 1;   // connection << 1 | end, and
constexpr std::uint64_t kWriteEnd = 1;      // connections are numbered from 1

struct Pipe {
    Fd read_end;
    Fd write_end;
};

bool make_pipe(Pipe& pipe) {
    int ends[2];
    if (::pipe2(ends, O_CLOEXEC) != 0) return false;
    pipe.read_end.reset(ends[0]);
    pipe.write_end.reset(ends[1]);
    return true;
}

} // namespace

Server::Server(ServerConfig config) : config_(std::move(config)), signals_(SignalPipe::install({SIGTERM, SIGINT, SIGCHLD})) {}

int Server::run() {
    ignore_sigpipe();
    if (!start()) {
        log_action(LogLevel::critical, "exit", Outcome::fail, {{"reason", "startup failed"}});
        return 1;
    }
    const bool served = serve();
    shutdown();
    // Peak memory of this process and of the largest handler, for the benchmark.
    rusage self{}, children{};
    ::getrusage(RUSAGE_SELF, &self);
    ::getrusage(RUSAGE_CHILDREN, &children);
    if (!served) {
        log_action(LogLevel::critical, "exit", Outcome::fail, {{"reason", "epoll_wait failed"}});
        return 1;
    }
    log_action(LogLevel::info, "exit", Outcome::success,
               {{"max_rss_kb", self.ru_maxrss}, {"handler_max_rss_kb", children.ru_maxrss}});
    return 0;
}

bool Server::start() {
    std::string error;
    coordinator_ = Coordinator::open({config_.agencies, config_.bets_file, config_.fsync}, error);
    if (!coordinator_) {
        log_action(LogLevel::critical, "open_store", Outcome::fail, {{"file", config_.bets_file}, {"error", error}});
        return false;
    }
    if (!raise_open_file_limit()) return false;
    listener_ = listen_tcp(config_.ip, config_.port, config_.listen_backlog, error);
    if (!listener_) {
        log_action(LogLevel::critical, "listen", Outcome::fail,
                   {{"ip", config_.ip}, {"port", config_.port}, {"error", error}});
        return false;
    }
    if (!poller_.valid() || !poller_.add(listener_.get(), EPOLLIN, kListenerToken) ||
        !poller_.add(signals_.fd(), EPOLLIN, kSignalToken)) {
        log_action(LogLevel::critical, "epoll", Outcome::fail, {{"error", errno_text("epoll")}});
        return false;
    }
    log_action(LogLevel::info, "listen", Outcome::success,
               {{"ip", config_.ip}, {"port", local_port(listener_.get())}, {"agencies", config_.agencies}});
    return true;
}

// The coordinator holds two pipe ends per handler: SERVER_MAX_HANDLERS
// handlers need that many descriptors, which the usual soft limit of 1024
// does not allow past about 500. Raised up to the hard limit, or refused.
bool Server::raise_open_file_limit() {
    const rlim_t needed = 2 * static_cast<rlim_t>(config_.max_handlers) + kSpareDescriptors;
    rlimit limit{};
    if (::getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < needed && limit.rlim_max >= needed) {
        limit.rlim_cur = needed;
        ::setrlimit(RLIMIT_NOFILE, &limit);
        ::getrlimit(RLIMIT_NOFILE, &limit);
    }
    if (limit.rlim_cur >= needed) {
        log_action(LogLevel::debug, "open_file_limit", Outcome::success, {{"limit", limit.rlim_cur}, {"needed", needed}});
        return true;
    }
    log_action(LogLevel::critical, "open_file_limit", Outcome::fail,
               {{"limit", limit.rlim_cur}, {"hard_limit", limit.rlim_max}, {"needed", needed},
                {"error", "SERVER_MAX_HANDLERS needs more open files than allowed: lower it or raise ulimit -n"}});
    return false;
}

// The event loop: signals, new connections, and every handler's pipes, as
// epoll reports them ready. The pipes are served first in each round, so the
// requests the handlers had already sent are handled before a SIGTERM read in
// the same round ends it. While the draw runs, the wait does not block and
// each round reads one more slice of the store: requests and signals are
// still served in between.
bool Server::serve() {
    std::vector<epoll_event> ready(256);
    while (!stopping_) {
        const int wait_ms = coordinator_->draw_running() ? 0 : -1;
        const int count = poller_.wait(ready, wait_ms);
        if (count < 0) {
            if (errno == EINTR) continue;
            log_action(LogLevel::critical, "epoll_wait", Outcome::fail, {{"error", errno_text("epoll_wait")}});
            return false;
        }
        bool accept = false, signal = false;
        for (int i = 0; i < count; ++i) {
            const std::uint64_t token = ready[static_cast<std::size_t>(i)].data.u64;
            if (token == kListenerToken) accept = true;
            else if (token == kSignalToken) signal = true;
            else on_child_event(token);
        }
        commit_round();
        forget_closed_children();
        if (accept) accept_clients();
        if (signal) on_signals();
        if (!stopping_ && coordinator_->draw_running()) advance_draw();
    }
    return true;
}

// A child's token is its connection number and which of its pipes is ready.
void Server::on_child_event(std::uint64_t token) {
    const auto found = children_.find(token >> 1);
    if (found == children_.end() || found->second.closed) return;
    if (token & kWriteEnd) flush(found->second);
    else read_requests(found->second);
}

// EPOLLOUT on the reply pipe only while replies wait in the outbox; level-
// triggered epoll would otherwise report the idle pipe writable every round.
void Server::watch_outbox(Child& child) {
    const bool want = !child.outbox.empty() && !child.closed;
    if (want == child.writing) return;
    const std::uint64_t token = child.connection << 1 | kWriteEnd;
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
    if (coordinator_->draw_done()) answer_parked_winners();
}

// SIGTERM / SIGINT start the shutdown; SIGCHLD only means "reap".
void Server::on_signals() {
    for (int number : signals_.drain()) {
        if (number == SIGCHLD) continue;
        log_action(LogLevel::info, "shutdown", Outcome::in_progress, {{"signal", strsignal(number)}});
        stopping_ = true;
    }
    reap_children();
}

// Takes every connection already waiting: with a small listen backlog, a
// burst of agencies would otherwise overflow it and wait for a SYN retry.
void Server::accept_clients() {
    for (;;) {
        std::string peer;
        Fd client = accept_connection(listener_.get(), peer);
        if (!client) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != ECONNABORTED)
                log_action(LogLevel::error, "accept", Outcome::fail, {{"error", errno_text("accept")}});
            return;
        }
        if (children_.size() >= static_cast<std::size_t>(config_.max_handlers)) {
            log_action(LogLevel::warning, "accept", Outcome::fail,
                       {{"peer", peer}, {"error", "too many connections"}, {"max_handlers", config_.max_handlers}});
            continue; // `client` closes here: the excess is refused, the rest goes on
        }
        spawn_handler(std::move(client), peer);
    }
}

// Forks the handler of `client` with two pipes, requests up and replies down
// (as the SPEC says pipes); the coordinator keeps its ends non-blocking so
// that one slow handler can never stall the poll loop.
void Server::spawn_handler(Fd client, const std::string& peer) {
    Pipe requests, replies;
    if (!make_pipe(requests) || !make_pipe(replies)) {
        log_action(LogLevel::error, "pipe", Outcome::fail, {{"peer", peer}, {"error", errno_text("pipe")}});
        return;
    }
    const std::uint64_t connection = coordinator_->new_connection();
    const pid_t pid = ::fork();
    if (pid < 0) {
        log_action(LogLevel::error, "fork", Outcome::fail, {{"peer", peer}, {"error", errno_text("fork")}});
        return;
    }
    if (pid == 0) {
        // The coordinator's ends must not stay open in the child, or the
        // handler would never see EOF on its reply pipe.
        requests.read_end.reset();
        replies.write_end.reset();
        become_handler(std::move(client), peer, std::move(requests.write_end), std::move(replies.read_end));
    }
    live_pids_.insert(pid);
    set_non_blocking(requests.read_end.get());
    set_non_blocking(replies.write_end.get());
    Child& child = children_[connection];
    child.pid = pid;
    child.connection = connection;
    child.peer = peer;
    child.from_handler = std::move(requests.read_end);
    child.to_handler = std::move(replies.write_end);
    if (!poller_.add(child.from_handler.get(), EPOLLIN, connection << 1)) {
        log_action(LogLevel::error, "epoll", Outcome::fail, {{"peer", peer}, {"error", errno_text("epoll_ctl")}});
        ::kill(pid, SIGKILL); // a handler the coordinator cannot hear is no use
        children_.erase(connection);
        return;
    }
    log_action(LogLevel::info, "accept", Outcome::success, {{"peer", peer}, {"handler_pid", pid}});
}

// In the forked child: drop every descriptor that belongs to the coordinator
// (so that pipe EOFs mean what they should, and no handler holds another
// connection's socket or pipes), then serve the one client.
void Server::become_handler(Fd client, const std::string& peer, Fd to_coordinator, Fd from_coordinator) {
    signals_.uninstall();
    ::signal(SIGINT, SIG_IGN); // a terminal's Ctrl-C reaches the coordinator, which stops us
    close_descriptors_except({client.get(), to_coordinator.get(), from_coordinator.get()});
    Handler handler(HandlerSetup{std::move(client), peer, std::move(to_coordinator),
                                 std::move(from_coordinator), config_.agencies,
                                 config_.idle_timeout_seconds * 1000});
    ::_exit(handler.run());
}

// Takes whatever the handler has written, then handles each whole message in
// order. A message that does not parse means the handler cannot be trusted:
// it is killed. A WINNERS with no reply yet is parked on the child, and once
// a DONE has run the draw every parked WINNERS is answered.
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
        if (auto reply = coordinator_->handle(request, child.connection))
            held_.emplace_back(child.connection, std::move(*reply));
        else child.waiting_winners = request.header.agency;
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

void Server::deliver(Child& child, const ipc::Reply& reply) {
    child.outbox.append(ipc::encode_reply(reply));
    flush(child);
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

// Once, when the draw has finished: a WINNERS that arrives later is answered at once.
void Server::answer_parked_winners() {
    for (auto& [connection, child] : children_) {
        if (child.waiting_winners == 0) continue;
        deliver(child, coordinator_->winners_reply(child.waiting_winners));
        child.waiting_winners = 0;
    }
}

// Collects every handler that has ended (no zombies); one killed by a signal
// is worth a WARNING, a normal exit only a DEBUG line.
void Server::reap_children() {
    int status = 0;
    for (pid_t pid; (pid = ::waitpid(-1, &status, WNOHANG)) > 0;) {
        live_pids_.erase(pid);
        if (WIFSIGNALED(status))
            log_action(LogLevel::warning, "handler_exit", Outcome::fail,
                       {{"handler_pid", pid}, {"signal", strsignal(WTERMSIG(status))}});
        else
            log_action(LogLevel::debug, "handler_exit", Outcome::success,
                       {{"handler_pid", pid}, {"code", WEXITSTATUS(status)}});
    }
}

// SIGTERM: stop accepting, answer parked WINNERS with "shutting down", close
// every pipe (handlers take EOF as "stop now"), wait for them, close the store.
void Server::shutdown() {
    const auto listen_port = local_port(listener_.get());
    listener_.reset();
    log_action(LogLevel::info, "close_socket", Outcome::success, {{"socket", "listener"}, {"port", listen_port}});
    for (auto& [connection, child] : children_) {
        if (child.waiting_winners != 0)
            deliver(child, {0, 0, wire::encode_error(wire::ErrorCode::shutting_down)});
        child.from_handler.reset();
        child.to_handler.reset();
        log_action(LogLevel::info, "close_pipe", Outcome::success, {{"handler_pid", child.pid}, {"peer", child.peer}});
    }
    children_.clear();
    wait_for_children(kShutdownDeadlineMs);
    coordinator_->close();
    log_action(LogLevel::info, "close_file", Outcome::success, {{"file", config_.bets_file}});
    log_action(LogLevel::info, "close_file", Outcome::success, {{"file", journal_path_for(config_.bets_file)}});
    signals_.uninstall();
}

// Waits for the handlers to exit on their own (woken by SIGCHLD through the
// self-pipe) until the deadline, then SIGKILLs and reaps the rest, so that
// the server always exits in time and leaves neither zombies nor orphans.
void Server::wait_for_children(int deadline_ms) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(deadline_ms);
    reap_children();
    while (!live_pids_.empty()) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) break;
        pollfd wake{signals_.fd(), POLLIN, 0}; // SIGCHLD arrives here
        ::poll(&wake, 1, static_cast<int>(left.count()));
        signals_.drain();
        reap_children();
    }
    for (pid_t pid : live_pids_) {
        log_action(LogLevel::warning, "handler_kill", Outcome::success, {{"handler_pid", pid}});
        ::kill(pid, SIGKILL);
    }
    while (!live_pids_.empty()) {
        int status = 0;
        const pid_t pid = ::waitpid(-1, &status, 0);
        if (pid < 0 && errno == EINTR) continue;
        if (pid < 0) break;
        live_pids_.erase(pid);
    }
}
