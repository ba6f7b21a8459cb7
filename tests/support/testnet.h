/*
 * testnet.h: loopback ports for tests that start real peers.
 *
 * A port from bind(0) is free only until someone else binds it, and the
 * kernel may hand the same number out again as soon as it is closed: a test
 * that picks two ports before its first peer listens can get one port twice
 * (the second peer then takes the first's place and answers its requests).
 * tu_free_port never returns a number it returned before in this process.
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

#endif
