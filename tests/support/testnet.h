/*
 * testnet.h: loopback ports for tests that start real peers.
 *
 * A port from bind(0) is free only until someone else binds it, and the
 * kernel may hand the same number out again as soon as it is closed: a test
 * that picks two ports before its first peer listens can get one port twice
 * (the second peer then takes the first's place and answers its requests).
 * tu_free_port never returns a number it returned before in this process;
 * tu_wait_port waits for a peer to listen.
 */
#ifndef SITREP_TESTNET_H
#define SITREP_TESTNET_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

static inline int tu_free_port(void)
{
    static int given[256];
    static int ngiven;
    for (int attempt = 0; attempt < 64; attempt++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t len = sizeof(a);
        if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
            getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
            if (fd >= 0)
                close(fd);
            continue;
        }
        close(fd);
        int port = ntohs(a.sin_port), seen = 0;
        for (int i = 0; i < ngiven; i++)
            seen |= given[i] == port;
        if (seen)
            continue;
        if (ngiven < (int)(sizeof(given) / sizeof(given[0])))
            given[ngiven++] = port;
        return port;
    }
    return -1;
}

/* Wait up to 5 s until something accepts on 127.0.0.1:port. 0, or -1. */
static inline int tu_wait_port(int port)
{
    for (int i = 0; i < 100; i++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = {.sin_family = AF_INET,
                                .sin_port = htons((uint16_t)port),
                                .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        int rc = connect(fd, (struct sockaddr *)&a, sizeof(a));
        close(fd);
        if (rc == 0)
            return 0;
        usleep(50000);
    }
    return -1;
}

#endif
