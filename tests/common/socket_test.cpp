// close_lingering (CONTRACT.md §5 "reply, then close") over real loopback TCP
// connections, where a close with unread input would send a reset.
#include "common/socket.hpp"

#include "common/io.hpp"

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <thread>
#include <utility>

namespace {

struct Connection {
    Fd client;
    Fd server; // the accepted end
};

Connection connect_loopback() {
    Connection connection;
    std::string error;
    const Fd listener = listen_tcp("127.0.0.1", 0, 1, error);
    EXPECT_TRUE(listener.valid()) << error;
    connection.client.reset(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(local_port(listener.get()));
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::connect(connection.client.get(), reinterpret_cast<const sockaddr*>(&address), sizeof address), 0)
        << std::strerror(errno);
    pollfd pending{listener.get(), POLLIN, 0};
    EXPECT_EQ(::poll(&pending, 1, 10000), 1) << "no connection to accept";
    std::string peer;
    connection.server = accept_connection(listener.get(), peer);
    EXPECT_TRUE(connection.server.valid());
    return connection;
}

// Waits until `fd` has input queued.
void await_input(int fd) {
    pollfd readable{fd, POLLIN, 0};
    ASSERT_EQ(::poll(&readable, 1, 10000), 1) << "nothing arrived";
}

} // namespace

TEST(CommonSocket, LingeringCloseDeliversTheReplyToAPeerWhoseRequestWasNeverRead) {
    Connection connection = connect_loopback();
    ASSERT_EQ(write_all(connection.client.get(), std::string(8192, 'g')), IoStatus::ok);
    await_input(connection.server.get()); // unread input: a plain close() would reset the connection
    ASSERT_EQ(write_all(connection.server.get(), std::string("ERROR 1")), IoStatus::ok);
    std::thread closer([&] { close_lingering(connection.server, 10000, 64 * 1024); });

    char reply[7] = {};
    EXPECT_EQ(read_all(connection.client.get(), reply, sizeof reply), IoStatus::ok) << std::strerror(errno);
    EXPECT_EQ(std::string(reply, sizeof reply), "ERROR 1");
    char after = 0;
    EXPECT_EQ(::read(connection.client.get(), &after, 1), 0) << "the sending side was not shut down";
    connection.client.reset(); // the peer closes: the lingering close ends
    closer.join();
    EXPECT_FALSE(connection.server.valid());
}

TEST(CommonSocket, LingeringCloseGivesUpOnAPeerThatNeverCloses) {
    Connection connection = connect_loopback();
    close_lingering(connection.server, 100, 64 * 1024);
    EXPECT_FALSE(connection.server.valid());
    char after = 0;
    EXPECT_EQ(::read(connection.client.get(), &after, 1), 0);
}

TEST(CommonSocket, LingeringCloseOfNoSocketDoesNothing) {
    Fd none;
    close_lingering(none, 100, 64 * 1024);
    EXPECT_FALSE(none.valid());
}
