// The server process: accept loop, handler processes, coordinator pipes and
// shutdown (see server.hpp).
#include "server/server.hpp"

#include "common/io.hpp"
#include "common/log.hpp"
#include "common/socket.hpp"
#include "server/handler.hpp"

#include <fcntl.h>
#include <poll.h>
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
        log_action(LogLevel::critical, "exit", Outcome::fail, {{"reason", "poll failed"}});
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
    listener_ = listen_tcp(config_.ip, config_.port, config_.listen_backlog, error);
    if (!listener_) {
        log_action(LogLevel::critical, "listen", Outcome::fail,
                   {{"ip", config_.ip}, {"port", config_.port}, {"error", error}});
        return false;
    }
    log_action(LogLevel::info, "listen", Outcome::success,
               {{"ip", config_.ip}, {"port", local_port(listener_.get())}, {"agencies", config_.agencies}});
    return true;
}

// The poll loop: signals, new connections, and every handler's pipes. The
// pipes are served first in each round, so the requests the handlers had
// already sent are handled before a SIGTERM read in the same round ends it.
// While the draw runs, poll() does not wait and each round reads one more
// slice of the store: requests and signals are still served in between.
bool Server::serve() {
    std::vector<pollfd> fds;
    std::vector<Child*> owners; // owners[i] is the child of fds[i], or null
    while (!stopping_) {
        fds.assign({{signals_.fd(), POLLIN, 0}, {listener_.get(), POLLIN, 0}});
        owners.assign(2, nullptr);
        for (Child& child : children_) {
            fds.push_back({child.from_handler.get(), POLLIN, 0});
            owners.push_back(&child);
            if (child.outbox.empty()) continue;
            fds.push_back({child.to_handler.get(), POLLOUT, 0});
            owners.push_back(&child);
        }
        const int wait_ms = coordinator_->draw_running() ? 0 : -1;
        if (::poll(fds.data(), fds.size(), wait_ms) < 0) {
            if (errno == EINTR) continue;
            log_action(LogLevel::critical, "poll", Outcome::fail, {{"error", errno_text("poll")}});
            return false;
        }
        for (std::size_t i = 2; i < fds.size(); ++i) {
            if (fds[i].revents == 0) continue;
            if (fds[i].events == POLLIN) read_requests(*owners[i]);
            else flush(*owners[i]);
        }
        children_.remove_if([](const Child& child) { return child.closed; });
        if (fds[1].revents & POLLIN) accept_clients();
        if (fds[0].revents & POLLIN) on_signals();
        if (!stopping_ && coordinator_->draw_running()) advance_draw();
    }
    return true;
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
    Child& child = children_.emplace_back();
    child.pid = pid;
    child.connection = connection;
    child.peer = peer;
    child.from_handler = std::move(requests.read_end);
    child.to_handler = std::move(replies.write_end);
    log_action(LogLevel::info, "accept", Outcome::success, {{"peer", peer}, {"handler_pid", pid}});
}

// In the forked child: drop every descriptor that belongs to the coordinator
// (so that pipe EOFs mean what they should), then serve the one client.
void Server::become_handler(Fd client, const std::string& peer, Fd to_coordinator, Fd from_coordinator) {
    signals_.uninstall();
    ::signal(SIGINT, SIG_IGN); // a terminal's Ctrl-C reaches the coordinator, which stops us
    listener_.reset();
    coordinator_->close();
    children_.clear();
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
        if (got > 0) { child.inbox.append(chunk, static_cast<std::size_t>(got)); continue; }
        if (got < 0 && errno == EINTR) continue;
        if (got == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) child.closed = true;
        break;
    }
    ipc::Request request;
    for (ipc::Parse parse; (parse = ipc::take_request(child.inbox, request)) != ipc::Parse::incomplete;) {
        if (parse == ipc::Parse::invalid) {
            log_action(LogLevel::error, "ipc", Outcome::fail, {{"handler_pid", child.pid}, {"error", "bad message"}});
            ::kill(child.pid, SIGKILL);
            child.closed = true;
            return;
        }
        if (auto reply = coordinator_->handle(request, child.connection)) deliver(child, *reply);
        else child.waiting_winners = request.header.agency;
    }
    if (coordinator_->draw_done()) answer_parked_winners();
}

void Server::deliver(Child& child, const ipc::Reply& reply) {
    child.outbox.append(ipc::encode_reply(reply));
    flush(child);
}

// Writes what the pipe takes now; poll() asks for POLLOUT while more is left.
void Server::flush(Child& child) {
    while (!child.outbox.empty()) {
        const ssize_t put = ::write(child.to_handler.get(), child.outbox.data(), child.outbox.size());
        if (put > 0) { child.outbox.erase(0, static_cast<std::size_t>(put)); continue; }
        if (put < 0 && errno == EINTR) continue;
        if (put < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
        child.closed = true; // the handler is gone
        return;
    }
}

void Server::answer_parked_winners() {
    for (Child& child : children_) {
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
    for (Child& child : children_) {
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
